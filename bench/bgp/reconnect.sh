#!/usr/bin/env bash
# Reconnect after a router restart: FRR 8.4 bgpd (dynamic neighbours, so only the node dials)
# is killed by PID, kept down OUTAGE seconds and started again; we measure the time from bgpd
# listening again (TCP :179 in its namespace) to the session Established (FRR's view, polled
# every ~20 ms). The node is our speaker with DEFAULT settings (bgp/examples/bgp_announce.rs
# --connect-time 0), and then, for reference, BIRD 2 with its default timers (connect retry
# 120 s, error wait 60-300 s), one cycle bounded at 150 s.
# Between cycles the session stays up 16 s (longer than the 15 s after which the idle
# hold-off is forgotten), so every cycle is a "router restart", not an oscillation.
#
#   sudo bench/bgp/reconnect.sh [CYCLES] [OUTAGE_S]
set -euo pipefail
cd "$(dirname "$0")/../.."
CYCLES=${1:-8}
OUTAGE=${2:-5}
W=$(mktemp -d /tmp/flb-reconnect.XXXXXX); chmod 755 "$W"  # the FRR daemons run as frr
TAG="flbrc$$"
R=$TAG-r; S=$TAG-s
PIDS=()
BGPD=""
cleanup() {
    for p in "${PIDS[@]:-}" $BGPD; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]:-}" $BGPD; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    for ns in $R $S; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

cargo build -q --release -p ferrolb-bgp --example bgp_announce
ANNOUNCE=$PWD/target/release/examples/bgp_announce

ip netns add $R; ip netns add $S
ip -n $R link set lo up; ip -n $S link set lo up
ip link add eth0 netns $R type veth peer name eth0 netns $S
ip -n $R link set eth0 up; ip -n $S link set eth0 up
ip -n $R addr add 192.0.2.1/24 dev eth0; ip -n $S addr add 192.0.2.10/24 dev eth0

D=$W/frr; mkdir -p $D/run; : > $D/vtysh.conf
echo "log file $D/zebra.log" > $D/zebra.conf
cat > $D/bgpd.conf <<C
log file $D/bgpd.log
router bgp 64513
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor NODES peer-group
 neighbor NODES remote-as 64512
 bgp listen range 192.0.2.0/24 peer-group NODES
 address-family ipv4 unicast
  neighbor NODES activate
 exit-address-family
exit
C
chown -R frr:frr $D
C="-u frr -g frr --vty_socket $D/run -z $D/run/zserv.api"
ip netns exec $R /usr/lib/frr/zebra $C -f $D/zebra.conf -i $D/run/zebra.pid >/dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -S $D/run/zserv.api ] && break; sleep 0.05; done
start_bgpd() {
    ip netns exec $R /usr/lib/frr/bgpd $C -f $D/bgpd.conf -i $D/run/bgpd.pid >/dev/null 2>&1 &
    BGPD=$!
}
vty() { vtysh --config_dir $D --vty_socket $D/run -c "$1" 2>/dev/null; }
state() {
    vty "show bgp neighbors 192.0.2.10 json" |
        python3 -c 'import json,sys
try: print(json.load(sys.stdin).get("192.0.2.10",{}).get("bgpState",""))
except Exception: print("")'
}
wait_state() { # $1 = state, $2 = timeout s
    local end=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt "$end" ]; do [ "$(state)" = "$1" ] && return 0; sleep 0.2; done
    return 1
}
listening() { ip netns exec $R ss -Hltn 'sport = :179' | grep -q .; }
now_ms() { date +%s%3N; }

measure() { # $1 = label, $2 = cycles, $3 = bound s -> one ms value per cycle in $W/$1.ms
    # (runs in this shell, not a subshell: BGPD must follow the restarted bgpd)
    : > "$W/$1.ms"
    for i in $(seq "$2"); do
        wait_state Established 60 || {
            echo "$1: not Established before cycle $i" >&2
            vty "show bgp summary" >&2; cat "$W"/announce.out >&2 || true
            return 1
        }
        sleep 16
        kill -9 "$BGPD"; wait "$BGPD" 2>/dev/null || true  # by PID, never by name
        sleep "$OUTAGE"
        start_bgpd
        while ! listening; do sleep 0.005; done
        local t0; t0=$(now_ms)
        local end=$(( t0 + $3 * 1000 ))
        until [ "$(state)" = "Established" ]; do
            [ "$(now_ms)" -gt "$end" ] && { echo "$1 cycle $i: not back within $3 s" >&2; echo "timeout" >> "$W/$1.ms"; break; }
            sleep 0.02
        done
        local t1; t1=$(now_ms)
        [ "$(state)" = "Established" ] && echo $(( t1 - t0 )) >> "$W/$1.ms"
    done
}

start_bgpd
for _ in $(seq 100); do vty "show bgp summary" >/dev/null && break; sleep 0.1; done

echo "== ferrolb (default settings), $CYCLES cycles, outage ${OUTAGE}s" >&2
ip netns exec $S "$ANNOUNCE" --router-id 192.0.2.10 --peer 192.0.2.1 --v4 10 --v6 0 \
    --connect-time 0 > $W/announce.out 2>&1 & SPID=$!; PIDS+=($SPID)
measure ferrolb "$CYCLES" 60 || true
kill "$SPID"; wait "$SPID" 2>/dev/null || true

echo "== BIRD 2 (default timers), 1 cycle, bounded at 150 s" >&2
cat > $W/bird.conf <<B
log "$W/bird.log" all;
router id 192.0.2.10;
protocol device {}
protocol static svc { ipv4; route 203.0.113.30/32 blackhole; }
protocol bgp tor { local 192.0.2.10 as 64512; neighbor 192.0.2.1 as 64513; ipv4 { export all; import none; }; }
B
ip netns exec $S bird -f -c $W/bird.conf -s $W/bird.ctl & PIDS+=($!)
measure bird 1 150 || true

python3 - "$(cat $W/ferrolb.ms)" "$(cat $W/bird.ms)" "$OUTAGE" <<'PY'
import statistics, sys
def stats(name, text):
    vals = [int(v) for v in text.split() if v.isdigit()]
    to = text.split().count("timeout")
    if not vals:
        print(f"{name}: no sample ({to} timeouts)"); return None
    vals.sort()
    p99 = vals[min(len(vals) - 1, int(round(0.99 * (len(vals) - 1))))]
    print(f"{name}: n={len(vals)} timeouts={to} min={vals[0]} ms p50={statistics.median(vals):.0f} ms "
          f"p99={p99} ms max={vals[-1]} ms  samples={vals}")
    return statistics.median(vals)
print(f"router bgpd listening again -> session Established (outage {sys.argv[3]} s)")
f = stats("ferrolb default", sys.argv[1])
b = stats("bird2 default", sys.argv[2])
if f and b:
    print(f"ratio bird/ferrolb (p50): {b / f:.1f}x")
PY
