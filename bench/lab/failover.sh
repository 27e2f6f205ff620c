#!/usr/bin/env bash
# L2 failover distribution in the lab topology (bench/lab/lab.sh: FRR router, three nodes each
# running ferrolb-speaker, client cl2 on the segment).
#
#   sudo bash bench/lab/failover.sh [TRIALS]      # default 20 per mode; ~1.5 min
#
# Modes: crash = `kill -9` of the owner's speaker AND its eth0 set down (a dead node; without the
# link down its kernel keeps answering through the stale MAC); term = `kill -TERM` (graceful
# leave: the speaker leaves membership first, the next owner takes over).
#
# Measurement: the client cl2 pings the L2 Service IP every 10 ms with the kernel's own ping
# (so the kernel's neighbour cache decides where packets go, as for a real client), and
# `tcpdump -e -tt` on cl2's eth0 records the source MAC of every echo reply and every ARP frame.
# t0 = $EPOCHREALTIME just before the kill; failover = first ICMP echo reply after t0 whose
# source MAC is another node's (the first reply to the client's own traffic from the new owner,
# so a GARP counts only if it really moved the client). Same host clock for t0 and the kernel
# capture timestamps. Resolution: the 10 ms ping interval. Also reported: first ARP frame
# (GARP or reply) from the new owner's MAC after t0.
# Between trials: link up, restart the speaker, wait (bounded 30 s) until all three speakers see
# 3 members, exactly one owns the IP, and the client's replies come from that owner.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TRIALS=${1:-20}
# shellcheck source=lab.sh
source "$ROOT/bench/lab/lab.sh"
echo "load before: $(cat /proc/loadavg)" >&2
lab_setup

svc_doc web-l2 l2-pool > "$M/services.yaml"
L2_IP=""
for _ in $(seq 200); do L2_IP=$(status_ip web-l2); [ -n "$L2_IP" ] && break; sleep 0.1; done
[ -n "$L2_IP" ] || die "controller did not assign web-l2 (see $WORK/controller.log)"
for n in "${NODES[@]}"; do ip -n "$P-$n" addr add "$L2_IP/32" dev lo; done
echo "web-l2 -> $L2_IP; MACs: n1=${NODE_MAC[n1]} n2=${NODE_MAC[n2]} n3=${NODE_MAC[n3]}" >&2

CAP=$WORK/capture.txt
ip netns exec "$P-cl2" tcpdump -l -e -tt -n -i eth0 "arp or (icmp and icmp[icmptype] == icmp-echoreply)" > "$CAP" 2>"$WORK/tcpdump.err" &
PIDS+=($!)
sleep 0.5
ip netns exec "$P-cl2" ping -n -q -i 0.01 "$L2_IP" > /dev/null 2>&1 &
PIDS+=($!)

mac_node() { local n; for n in "${NODES[@]}"; do [ "${NODE_MAC[$n]}" = "$1" ] && echo "$n"; done; return 0; }
last_reply_mac() { awk '/echo reply/ {m=$2} END {print m}' "$CAP"; }
# first_reply T0 OLD_MAC -> "time mac" of the first echo reply after T0 from another MAC
first_reply() {
    awk -v t0="$1" -v old="$2" '$1 > t0 && /echo reply/ && $2 != old {print $1, $2; exit}' "$CAP"
}
first_arp() {
    awk -v t0="$1" -v m="$2" '$1 > t0 && /ethertype ARP/ && $2 == m {print $1; exit}' "$CAP"
}

steady() { # bounded wait for a converged lab whose owner serves the client; echoes the owner
    local owner="" prev=""
    for _ in $(seq 60); do
        if members_converged; then
            owner=$(l2_owner)
            if [ -n "$owner" ] && [ "${owner#* }" = "$owner" ] &&
                [ "$(last_reply_mac)" = "${NODE_MAC[$owner]}" ] && [ "$owner" = "$prev" ]; then
                echo "$owner"; return 0
            fi
            prev=$owner
        fi
        sleep 0.5
    done
    return 1
}

RES=$WORK/results.txt; : > "$RES"
for mode in crash term; do
    for i in $(seq "$TRIALS"); do
        owner=$(steady) || die "lab did not converge before $mode trial $i (see $WORK/n*.log)"
        old_mac=${NODE_MAC[$owner]}
        pid=${SPEAKER_PID[$owner]}
        t0=$EPOCHREALTIME
        if [ "$mode" = crash ]; then
            kill -KILL "$pid"; ip -n "$P-$owner" link set eth0 down
        else
            kill -TERM "$pid"
        fi
        got=""
        for _ in $(seq 200); do got=$(first_reply "$t0" "$old_mac"); [ -n "$got" ] && break; sleep 0.05; done
        if [ -z "$got" ]; then
            echo "$mode failed $owner - -" >> "$RES"
            echo "  $mode $i: no reply from another node within 10 s" >&2
        else
            read -r t1 new_mac <<< "$got"
            new=$(mac_node "$new_mac")
            ta=$(first_arp "$t0" "$new_mac")
            python3 -c "import sys; t0,t1=float(sys.argv[1]),float(sys.argv[2]); ta=sys.argv[3]; \
print(sys.argv[4], f'{(t1-t0)*1000:.1f}', sys.argv[5], sys.argv[6], f'{(float(ta)-t0)*1000:.1f}' if ta else '-')" \
                "$t0" "$t1" "$ta" "$mode" "$owner" "$new" >> "$RES"
            tail -1 "$RES" | awk -v i="$i" '{printf "  %s %s: %s -> %s, first reply from new owner %s ms (its first ARP frame %s ms)\n", $1, i, $3, $4, $2, $5}' >&2
        fi
        # Restore the node.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        [ "$mode" = crash ] && ip -n "$P-$owner" link set eth0 up
        start_speaker "$owner"
    done
done
echo "load after: $(cat /proc/loadavg)" >&2

echo
echo "L2 failover, kill -> first echo reply to the client from the new owner (ms), ping every 10 ms:"
python3 - "$RES" <<'EOF'
import sys, math, collections
rows = collections.defaultdict(list); arp = collections.defaultdict(list); failed = collections.Counter()
for l in open(sys.argv[1]):
    f = l.split()
    if f[1] == "failed":
        failed[f[0]] += 1; continue
    rows[f[0]].append(float(f[1]))
    if f[4] != "-": arp[f[0]].append(float(f[4]))
def pct(xs, p):
    xs = sorted(xs); return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]
print("| mode | n | failed | p50 | p95 | p99 | max | new owner's first ARP frame p50 / max |")
print("|---|---|---|---|---|---|---|---|")
for k in ("crash", "term"):
    v = rows[k]
    if not v: print(f"| {k} | 0 | {failed[k]} | | | | | |"); continue
    a = arp[k]
    a_s = f"{pct(a,50):.0f} / {max(a):.0f}" if a else "-"
    print(f"| {k} | {len(v)} | {failed[k]} | {pct(v,50):.0f} | {pct(v,95):.0f} | {pct(v,99):.0f} | {max(v):.0f} | {a_s} |")
EOF
