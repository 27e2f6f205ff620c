#!/usr/bin/env bash
# Service manifest -> route in the router's FIB and ARP answered, manifest deleted -> route
# gone, and idle CPU with 1,000 manifest files, in the lab topology (bench/lab/lab.sh: FRR
# router, three nodes each running ferrolb-speaker, the controller in standalone mode).
#
#   sudo bash bench/lab/fib.sh [TRIALS] [IDLE_SECONDS]   # default 20 and 30; ~2.5 min
#
# Release binaries from target/release (BIN=... to use others): build them first with
# `cargo build --release -p ferrolb-speaker -p ferrolb-controller -p ferrolb-tests --bins` (the `lab` binary).
#
# Per trial a new file holds a BGP Service (svc-N, pool bgp-pool, endpoints on all three nodes)
# and an L2 Service (l2-N, pool l2-pool, endpoints on all three nodes, its IP pinned with ferrolb.io/loadBalancerIPs so the
# client can ask for it from t0: arping every 5 ms from cl2). It is moved into the manifests
# directory (rename: the file appears whole); t0 = $EPOCHREALTIME just before the `mv`.
# Timestamps, all on the host clock:
#   status  = mtime of the first version of the controller's status file that holds svc-N's IP
#             (a 2 ms poller records each new version's mtime and content);
#   update1 = first BGP UPDATE carrying <ip>/32 seen on the router's br0 (tcpdump -tt -v, kernel
#             timestamp), from any node; update3 = the third node's first UPDATE;
#   fib1    = first `ip -ts monitor route` line adding <ip> in the router; fib3 = first line
#             with all three next hops (ECMP complete);
#   arp     = the first ARP reply for the L2 IP on the client's eth0 (tcpdump -tt, kernel
#             timestamp). Not arping's exit: arping itself reports a reply 50-70 ms after the
#             address exists even when the kernel answers (measured with a plain veth pair),
#             so its exit time measured arping, not the speaker.
# Then the file is removed (t1 = just before the `rm`), measured from t1: deleted status =
# the first status version without svc-N; 3rd withdrawal = the third node's first UPDATE
# withdrawing <ip>/32 at the router; gone = the `ip -ts monitor route` line deleting <ip> in
# the router. Summary rows: p50, p95, p99 (nearest rank: with 20 trials p99 is the maximum).
# Idle CPU: utime+stime (/proc/PID/stat) of the controller and the three speakers over
# IDLE_SECONDS with the lab's own 3 files, then again after 1,000 more files (Services of
# another loadBalancerClass: parsed and held, not allocated) were added and applied.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TRIALS=${1:-20}
IDLE=${2:-30}
# shellcheck source=lab.sh
source "$ROOT/bench/lab/lab.sh"
echo "load before: $(cat /proc/loadavg)" >&2
lab_setup

# Bounded wait: three BGP sessions up.
for _ in $(seq 300); do
    up=0
    for n in "${NODES[@]}"; do [ "$(metric "$n" ferrolb_speaker_bgp_session_up)" = 1 ] && up=$((up + 1)); done
    [ $up = 3 ] && break; sleep 0.2
done
[ $up = 3 ] || die "BGP sessions not up (see $WORK/n*.log)"

ip netns exec "$P-r" ip -ts monitor route > "$WORK/monitor.txt" 2>/dev/null &
PIDS+=($!)
ip netns exec "$P-r" tcpdump -l -tt -v -n -i br0 "tcp port 179" > "$WORK/bgp.txt" 2>"$WORK/tcpdump.err" &
PIDS+=($!)
ip netns exec "$P-cl2" tcpdump -l -tt -n -i eth0 "arp" > "$WORK/arp.txt" 2>"$WORK/tcpdump-arp.err" &
PIDS+=($!)
python3 - "$M/.ferrolb/status.yaml" > "$WORK/status-versions.txt" <<'EOF' &
import os, sys, time
path, last = sys.argv[1], None
end = time.time() + 900
while time.time() < end:
    try:
        st = os.stat(path)
        if st.st_mtime_ns != last:
            last = st.st_mtime_ns
            text = open(path).read().replace("\n", " | ")
            print(f"{st.st_mtime_ns / 1e9:.6f} {text}", flush=True)
    except FileNotFoundError:
        pass
    time.sleep(0.002)
EOF
PIDS+=($!)
sleep 1

RES=$WORK/trials.txt; : > "$RES"
for i in $(seq "$TRIALS"); do
    svc=svc-$i
    l2ip=192.0.2.$((200 + i % 10))
    { svc_doc "$svc" bgp-pool; svc_doc "l2-$i" l2-pool "ferrolb.io/loadBalancerIPs: $l2ip"; } > "$WORK/$svc.yaml"
    rm -f "$WORK/arp-$i.txt"
    ( ns cl2 arping -q -i eth0 -W 0.005 -C 1 -w 10 "$l2ip" >/dev/null 2>&1 && echo "$EPOCHREALTIME" > "$WORK/arp-$i.txt" ) &
    arp_pid=$!
    sleep 0.05
    t0=$EPOCHREALTIME
    mv "$WORK/$svc.yaml" "$M/$svc.yaml"
    ip=""
    for _ in $(seq 1000); do ip=$(status_ip "$svc"); [ -n "$ip" ] && break; sleep 0.01; done
    [ -n "$ip" ] || die "controller did not assign $svc"
    paths=0
    for _ in $(seq 1000); do
        paths=$(ip -n "$P-r" route show "$ip" | grep -c 'nexthop via' || true)
        [ "$paths" = 3 ] && break; sleep 0.01
    done
    [ "$paths" = 3 ] || echo "  trial $i: only $paths paths for $ip after 10 s" >&2
    wait "$arp_pid" || true
    arp=$(cat "$WORK/arp-$i.txt" 2>/dev/null || echo -)
    sleep 0.3
    t1=$EPOCHREALTIME
    rm -f "$M/$svc.yaml"
    for _ in $(seq 1000); do ip -n "$P-r" route show "$ip" | grep -q . || break; sleep 0.01; done
    echo "$i $svc $ip $t0 $arp $t1 $l2ip" >> "$RES"
    sleep 0.5
done
sleep 0.5
echo "load after: $(cat /proc/loadavg)" >&2

echo
echo "Service manifest -> router FIB (ms after the file appears), $TRIALS trials:"
python3 - "$RES" "$WORK/status-versions.txt" "$WORK/bgp.txt" "$WORK/monitor.txt" "$WORK/arp.txt" <<'EOF'
import sys, re, math, datetime
trials = [l.split() for l in open(sys.argv[1])]
status = []
for l in open(sys.argv[2]):
    ts, text = l.split(" ", 1)
    status.append((float(ts), text))
# BGP UPDATEs on the wire: (ts, src, prefix)
# and withdrawals: (ts, src, prefix)
updates, withdrawals, ts, src, into = [], [], None, None, None
for l in open(sys.argv[3], errors="replace"):
    m = re.match(r"^(\d+\.\d+) IP ", l)
    if m:
        ts, src, into = float(m.group(1)), None, None
        continue
    m = re.match(r"^\s+(\d+\.\d+\.\d+\.\d+)\.\d+ > \d+\.\d+\.\d+\.\d+\.179:", l)
    if m:
        src = m.group(1); continue
    if "Updated routes:" in l:
        into = updates; continue
    if "Withdrawn routes:" in l:
        into = withdrawals; continue
    m = re.match(r"^\s+(\d+\.\d+\.\d+\.\d+/\d+)\s*$", l)
    if into is not None and m and ts is not None:
        into.append((ts, src, m.group(1))); continue
    if into is not None and l.strip() and not m:
        into = None
# route monitor: (ts, prefix, nexthops, deleted)
fib, cur = [], None
for l in open(sys.argv[4]):
    if l.startswith("["):
        t = datetime.datetime.strptime(l[1:27], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
        rest = l[28:].split()
        deleted = rest[:1] == ["Deleted"]
        dst = rest[1] if deleted else rest[0]
        cur = [t, dst, 1 if " via " in l else 0, deleted]
        fib.append(cur)
    elif cur is not None and "nexthop via" in l:
        cur[2] = cur[2] + 1 if cur[2] else 1
def first(xs, pred):
    return next((x for x in xs if pred(x)), None)
rows = []
print("| trial | IP | status written | first UPDATE at router | 3rd node's UPDATE | FIB 1st path | FIB 3 paths | ARP answered | deleted: status written | 3rd node's withdrawal | route gone |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
gone_rows, arp_rows = [], []
replies = []  # (ts, ip) of ARP replies seen by the client
for l in open(sys.argv[5], errors="replace"):
    m = re.match(r"^(\d+\.\d+) ARP, Reply (\S+) is-at", l)
    if m:
        replies.append((float(m.group(1)), m.group(2)))
for i, svc, ip, t0, _arping, t1, l2ip in trials:
    t0, t1 = float(t0), float(t1)
    a = first(replies, lambda x: t0 <= x[0] < t1 and x[1] == l2ip)
    arp_rows.append(None if a is None else (a[0] - t0) * 1000)
    g = first(fib, lambda x: x[0] >= t1 and x[1] == ip and x[3])
    gone_rows.append(None if g is None else (g[0] - t1) * 1000)
    s = first(status, lambda x: x[0] >= t0 - 0.001 and f"name: {svc} " in x[1] and ip in x[1])
    ups = [u for u in updates if u[0] >= t0 and u[2] == f"{ip}/32"]
    firsts = {}
    for u in ups:
        firsts.setdefault(u[1], u[0])
    u1 = min(firsts.values()) if firsts else None
    u3 = sorted(firsts.values())[2] if len(firsts) >= 3 else None
    f1 = first(fib, lambda x: x[0] >= t0 and x[1] == ip and not x[3])
    f3 = first(fib, lambda x: x[0] >= t0 and x[1] == ip and not x[3] and x[2] >= 3)
    r = [None if x is None else (x - t0) * 1000 for x in (s[0] if s else None, u1, u3, f1[0] if f1 else None, f3[0] if f3 else None)]
    sd = first(status, lambda x: x[0] >= t1 - 0.001 and f"name: {svc} " not in x[1])
    wd = {}
    for w in withdrawals:
        if w[0] >= t1 and w[2] == f"{ip}/32":
            wd.setdefault(w[1], w[0])
    w3 = sorted(wd.values())[2] if len(wd) >= 3 else None
    r += [arp_rows[-1]] + [None if x is None else (x - t1) * 1000 for x in (sd[0] if sd else None, w3)] + [gone_rows[-1]]
    rows.append(r)
    print(f"| {i} | {ip} | " + " | ".join("-" if x is None else f"{x:.0f}" for x in r) + " |")
def pct(xs, p):
    xs = sorted(xs); return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]
cols = list(zip(*rows))
print("| **p50** | | " + " | ".join(f"{pct([x for x in c if x is not None],50):.0f}" if any(x is not None for x in c) else "-" for c in cols) + " |")
print("| **p95** | | " + " | ".join(f"{pct([x for x in c if x is not None],95):.0f}" if any(x is not None for x in c) else "-" for c in cols) + " |")
print("| **p99** | | " + " | ".join(f"{pct([x for x in c if x is not None],99):.0f}" if any(x is not None for x in c) else "-" for c in cols) + " |")
print("| **max** | | " + " | ".join(f"{max(x for x in c if x is not None):.0f}" if any(x is not None for x in c) else "-" for c in cols) + " |")
EOF

# Idle CPU: the lab's 3 files, then 1,000 more.
cpu_ms() { # PID -> utime+stime in ms
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"
}
idle() { # LABEL
    local pids=("$CTL_PID") names=(controller "${NODES[@]}") before=() i n
    for n in "${NODES[@]}"; do pids+=("${SPEAKER_PID[$n]}"); done
    for i in "${!pids[@]}"; do before[i]=$(cpu_ms "${pids[i]}"); done
    sleep "$IDLE"
    for i in "${!pids[@]}"; do
        echo "| $1 | ${names[i]} | $(awk -v a="${before[i]}" -v b="$(cpu_ms "${pids[i]}")" -v s="$IDLE" 'BEGIN{printf "%.0f ms (%.2f%% of a core)", b - a, (b - a) / s / 10}') |"
    done
}
echo
echo "Idle CPU over ${IDLE} s (utime+stime from /proc/PID/stat):"
echo "| manifest files | process | CPU |"
echo "|---|---|---|"
idle "3"
for i in $(seq 1000); do
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: idle-%s, namespace: default}\nspec: {type: LoadBalancer, loadBalancerClass: example.com/other, ports: [{port: 80}]}\n' "$i" > "$M/.idle-$i.tmp"
    mv "$M/.idle-$i.tmp" "$M/idle-$i.yaml"
done
sleep 5 # applied (the loader's quiet period, then one pass per binary)
idle "1003"
