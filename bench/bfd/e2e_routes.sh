#!/usr/bin/env bash
# End-to-end failover skeleton: a node announces 203.0.113.10/32 over BGP with BFD to an FRR
# router (zebra + bgpd + bfdd); the node freezes (kill -STOP); how long until the router's
# kernel no longer has the route, and how much of that is BFD detection?
#
#   sudo bash bench/bfd/e2e_routes.sh [TRIALS]     # default 10 per timer set
#
# Today the node is BIRD 2 (BGP + BFD): this is the peer baseline for the future ferrolb
# measurement. The ferrolb node (ferrolb-speaker with our BGP + BFD) does not exist yet; when
# it does, start it in "$N" instead of BIRD (see NODE below) and report both in BENCHMARKS.md.
#
# t0 = $EPOCHREALTIME before the builtin `kill -STOP`; t_bfd = FRR bfdd's `up -> down`
# log line (microseconds); t_route = `ip -ts monitor route` line `Deleted 203.0.113.10` in the
# router's namespace. Same host clock for all three.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRIALS=${1:-10}
NODE=${NODE:-bird}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
[ "$NODE" = bird ] || { echo "NODE=$NODE: only the BIRD baseline exists yet (ferrolb-speaker is not built)" >&2; exit 2; }

R=flb-bench-e2e-r-$$; N=flb-bench-e2e-n-$$
D=$(mktemp -d /tmp/flb-bench-e2e.XXXXXX); chmod 755 "$D"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        rm -rf "/var/tmp/frr/zebra.$p" "/var/tmp/frr/bfdd.$p" "/var/tmp/frr/bgpd.$p"
    done
    ip netns del "$R" 2>/dev/null || true
    ip netns del "$N" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT

ip netns add "$R"; ip netns add "$N"
ip -n "$R" link set lo up; ip -n "$N" link set lo up
ip link add eth0 netns "$R" type veth peer name eth0 netns "$N"
ip -n "$R" link set eth0 up; ip -n "$N" link set eth0 up
ip -n "$R" addr add 192.0.2.1/24 dev eth0; ip -n "$N" addr add 192.0.2.11/24 dev eth0

F=$D/frr; mkdir -p "$F/run"; : > "$F/vtysh.conf"
printf 'hostname r\nlog file %s/zebra.log\n' "$F" > "$F/zebra.conf"
printf 'log file %s/bfdd.log\nlog timestamp precision 6\ndebug bfd peer\nbfd\n profile fast\n exit\nexit\n' "$F" > "$F/bfdd.conf"
cat > "$F/bgpd.conf" <<EOF
log file $F/bgpd.log
router bgp 64512
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 neighbor 192.0.2.11 remote-as 64513
 neighbor 192.0.2.11 bfd
 neighbor 192.0.2.11 bfd profile fast
exit
EOF
chown -R frr:frr "$F"
C=(-u frr -g frr --vty_socket "$F/run" -z "$F/run/zserv.api")
ip netns exec "$R" /usr/lib/frr/zebra "${C[@]}" -f "$F/zebra.conf" -i "$F/run/zebra.pid" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$F/run/zserv.api" ] && break; sleep 0.05; done
ip netns exec "$R" /usr/lib/frr/bfdd "${C[@]}" -f "$F/bfdd.conf" -i "$F/run/bfdd.pid" --bfdctl "$F/run/bfdd.sock" >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$R" /usr/lib/frr/bgpd "${C[@]}" -f "$F/bgpd.conf" -i "$F/run/bgpd.pid" >/dev/null 2>&1 &
PIDS+=($!)
vty() { vtysh --config_dir "$F" --vty_socket "$F/run" "$@"; }
for _ in $(seq 400); do [ -S "$F/run/bfdd.vty" ] && [ -S "$F/run/bgpd.vty" ] && vty -c 'show bfd peers' >/dev/null 2>&1 && break; sleep 0.05; done

ip netns exec "$R" ip -ts monitor route > "$D/monitor.txt" 2>/dev/null &
PIDS+=($!)

route_present() { ip -n "$R" route show 203.0.113.10 | grep -q .; }
wait_route() { # present|absent, bounded 60 s (BIRD reconnects after its error wait)
    for _ in $(seq 1200); do
        if [ "$1" = present ]; then route_present && return 0; else route_present || return 0; fi
        sleep 0.05
    done
    echo "timeout waiting for route $1" >&2; return 1
}
bfd_up() { vty -c 'show bfd peers brief' 2>/dev/null | grep -q '192.0.2.11.* up'; }

start_bird() { # ms mult
    cat > "$D/bird.conf" <<EOF
router id 192.0.2.11;
protocol device { }
protocol static svc { ipv4; route 203.0.113.10/32 blackhole; }
protocol bfd { interface "eth0" { min rx interval $1 ms; min tx interval $1 ms; multiplier $2; }; }
protocol bgp tor {
  local 192.0.2.11 as 64513;
  neighbor 192.0.2.1 as 64512;
  bfd on;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  ipv4 { import none; export where proto = "svc"; next hop self; };
}
EOF
    ip netns exec "$N" bird -f -c "$D/bird.conf" -s "$D/bird.ctl" >/dev/null 2>&1 &
    NODE_PID=$!; PIDS+=($NODE_PID)
}

RESULTS=$D/results.txt; : > "$RESULTS"
for timers in "300 3" "100 3"; do
    set -- $timers; ms=$1; mult=$2
    vty -c 'conf t' -c 'bfd' -c 'profile fast' -c "receive-interval $ms" -c "transmit-interval $ms" -c "detect-multiplier $mult" -c 'end' >/dev/null
    echo "== node BIRD, BFD ${ms} ms x ${mult}" >&2
    start_bird "$ms" "$mult"
    for i in $(seq "$TRIALS"); do
        wait_route present
        for _ in $(seq 400); do bfd_up && break; sleep 0.05; done   # lab pitfall 2: BFD lags BGP
        sleep 1.5
        t0=$EPOCHREALTIME
        kill -STOP "$NODE_PID"
        wait_route absent
        sleep 0.1
        kill -CONT "$NODE_PID"
        python3 - "$t0" "$F/bfdd.log" "$D/monitor.txt" "bird-${ms}x${mult}" >> "$RESULTS" <<'EOF'
import sys, datetime
t0 = float(sys.argv[1])
def utc(s, fmt):
    return datetime.datetime.strptime(s, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()
bfd = next((utc(" ".join(l.split()[:2]), "%Y/%m/%d %H:%M:%S.%f") for l in open(sys.argv[2])
            if "peer:192.0.2.11" in l and "-> down" in l
            and utc(" ".join(l.split()[:2]), "%Y/%m/%d %H:%M:%S.%f") >= t0), None)
route = next((utc(l[1:27], "%Y-%m-%dT%H:%M:%S.%f") for l in open(sys.argv[3])
              if "Deleted 203.0.113.10" in l and utc(l[1:27], "%Y-%m-%dT%H:%M:%S.%f") >= t0), None)
if bfd is None or route is None:
    # Reported, not hidden: the summary counts these trials as failed.
    tail = [l.strip() for l in open(sys.argv[2])][-3:]
    print(f"# {sys.argv[4]} trial without {'BFD down' if bfd is None else 'route delete'}: bfdd log tail {tail}", file=sys.stderr)
    print(sys.argv[4], "failed", "failed")
else:
    print(sys.argv[4], f"{(bfd - t0) * 1000:.1f}", f"{(route - t0) * 1000:.1f}")
EOF
        tail -1 "$RESULTS" | awk '{print "  trial: bfd down " $2 " ms, route gone " $3 " ms"}' >&2
    done
    kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
    wait_route absent
done

echo
echo "Node frozen (kill -STOP) -> FRR: BFD Down / kernel route deleted (ms), $TRIALS trials each:"
python3 - "$RESULTS" <<'EOF'
import sys, collections, math
rows = collections.defaultdict(list)
failed = collections.Counter()
for l in open(sys.argv[1]):
    k, b, r = l.split()
    if b == "failed":
        failed[k] += 1
        continue
    rows[k].append((float(b), float(r)))
def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]
print("| node | BFD timers | n | failed trials | BFD down p50 / p95 / max | route gone p50 / p95 / max | route - BFD, max |")
print("|---|---|---|---|---|---|---|")
for k, v in sorted(rows.items()):
    node, t = k.split("-", 1)
    b = [x for x, _ in v]; r = [y for _, y in v]; d = [y - x for x, y in v]
    print(f"| {node} | {t.replace('x', ' ms x ')} | {len(v)} | {failed[k]} | {pct(b,50):.0f} / {pct(b,95):.0f} / {max(b):.0f} | {pct(r,50):.0f} / {pct(r,95):.0f} / {max(r):.0f} | {max(d):.0f} |")
EOF
