#!/usr/bin/env bash
# BFD detection-time benchmark: how long after our BFD process freezes does FRR bfdd declare
# the session Down? Baseline in the same run: the same FRR against BIRD's `protocol bfd`,
# frozen the same way. Two timer sets: 300 ms x 3 (MetalLB/FRR default) and 100 ms x 3.
#
#   sudo bash bench/bfd/run.sh [TRIALS]        # default 12 trials per (peer, timers)
#
# Measurement: t0 = $EPOCHREALTIME just before the bash builtin `kill -STOP` of the peer
# process (ferrolb `bfd_peer` example, or `bird`), t1 = the microsecond timestamp of FRR's
# own log line `state-change: ... up -> down reason:control-expired` (bfdd.conf has
# `debug bfd peer` and `log timestamp precision 6`). Same host clock for both. The peer is
# then thawed, the session comes back Up, settles for 1.5 s, and the next trial starts.
# Namespaces: flb-bench-bfd-r-$$ (FRR, 192.0.2.1) and flb-bench-bfd-n-$$ (peer, 192.0.2.2).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../stop.sh
source bench/stop.sh
TRIALS=${1:-12}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

echo "== building bfd_peer (release)" >&2
cargo build -q --release -p ferrolb-bfd --example bfd_peer
BIN=$(pwd)/target/release/examples/bfd_peer

R=flb-bench-bfd-r-$$; N=flb-bench-bfd-n-$$
D=$(mktemp -d /tmp/flb-bench-bfd.XXXXXX); chmod 755 "$D"   # frr must traverse it
PIDS=()
cleanup() {
    stop_pids "${PIDS[@]}"
    ip netns del "$R" 2>/dev/null || true
    ip netns del "$N" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT

ip netns add "$R"; ip netns add "$N"
ip -n "$R" link set lo up; ip -n "$N" link set lo up
ip link add eth0 netns "$R" type veth peer name eth0 netns "$N"
ip -n "$R" link set eth0 up; ip -n "$N" link set eth0 up
ip -n "$R" addr add 192.0.2.1/24 dev eth0; ip -n "$N" addr add 192.0.2.2/24 dev eth0

mkdir -p "$D/frr/run"; : > "$D/frr/vtysh.conf"
printf 'hostname r\nlog file %s/frr/zebra.log\n' "$D" > "$D/frr/zebra.conf"
printf 'log file %s/frr/bfdd.log\nlog timestamp precision 6\ndebug bfd peer\nbfd\n peer 192.0.2.2 interface eth0\n exit\nexit\n' "$D" > "$D/frr/bfdd.conf"
chown -R frr:frr "$D/frr"
C=(-u frr -g frr --vty_socket "$D/frr/run" -z "$D/frr/run/zserv.api")
ip netns exec "$R" /usr/lib/frr/zebra "${C[@]}" -f "$D/frr/zebra.conf" -i "$D/frr/run/zebra.pid" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$D/frr/run/zserv.api" ] && break; sleep 0.05; done
ip netns exec "$R" /usr/lib/frr/bfdd "${C[@]}" -f "$D/frr/bfdd.conf" -i "$D/frr/run/bfdd.pid" --bfdctl "$D/frr/run/bfdd.sock" >/dev/null 2>&1 &
PIDS+=($!)
vty() { vtysh --config_dir "$D/frr" --vty_socket "$D/frr/run" "$@"; }
for _ in $(seq 400); do [ -S "$D/frr/run/bfdd.vty" ] && vty -c 'show bfd peers' >/dev/null 2>&1 && break; sleep 0.05; done
status() { vty -c 'show bfd peer 192.0.2.2 interface eth0 json' 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' 2>/dev/null || true; }
wait_status() { # $1 = up|down, bounded 20 s
    for _ in $(seq 400); do [ "$(status)" = "$1" ] && return 0; sleep 0.05; done
    echo "timeout waiting for FRR status $1 (now: $(status))" >&2; return 1
}
set_frr_timers() { # rx tx mult
    vty -c 'conf t' -c 'bfd' -c 'peer 192.0.2.2 interface eth0' \
        -c "receive-interval $1" -c "transmit-interval $2" -c "detect-multiplier $3" -c 'end' >/dev/null
}
# First "up -> down reason:control-expired" line of bfdd.log after t0 (epoch seconds), as
# milliseconds after t0.
detect_ms() {
    python3 - "$1" "$D/frr/bfdd.log" <<'EOF'
import sys, datetime
t0 = float(sys.argv[1])
for line in open(sys.argv[2]):
    if "up -> down reason:control-expired" not in line:
        continue
    ts = datetime.datetime.strptime(" ".join(line.split()[:2]), "%Y/%m/%d %H:%M:%S.%f")
    t = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
    if t >= t0:
        print(f"{(t - t0) * 1000:.1f}")
        break
EOF
}

RESULTS="$D/results.txt"; : > "$RESULTS"
run_trials() { # label pid
    local label=$1 pid=$2 i t0 ms
    for i in $(seq "$TRIALS"); do
        wait_status up
        sleep 1.5
        t0=$EPOCHREALTIME
        kill -STOP "$pid"
        wait_status down
        ms=$(detect_ms "$t0")
        kill -CONT "$pid"
        [ -n "$ms" ] || { echo "no state-change line for trial $i" >&2; exit 1; }
        echo "$label $ms" >> "$RESULTS"
        echo "  $label trial $i: ${ms} ms" >&2
    done
}

for timers in "300 3" "100 3"; do
    set -- $timers; ms=$1; mult=$2
    set_frr_timers "$ms" "$ms" "$mult"
    echo "== ferrolb bfd_peer, ${ms} ms x ${mult}" >&2
    ip netns exec "$N" "$BIN" --local 192.0.2.2 --peer 192.0.2.1 --rx "$ms" --tx "$ms" --mult "$mult" > "$D/ours.out" 2>&1 &
    OURS=$!; PIDS+=($OURS)
    run_trials "ferrolb-${ms}x${mult}" "$OURS"
    kill -TERM "$OURS"; wait "$OURS" 2>/dev/null || true
    wait_status down

    echo "== BIRD protocol bfd, ${ms} ms x ${mult}" >&2
    cat > "$D/bird.conf" <<EOF
router id 192.0.2.2;
protocol device { }
protocol bfd {
  interface "eth0" { min rx interval $ms ms; min tx interval $ms ms; multiplier $mult; };
  neighbor 192.0.2.1;
}
EOF
    ip netns exec "$N" bird -f -c "$D/bird.conf" -s "$D/bird.ctl" >/dev/null 2>&1 &
    BIRD=$!; PIDS+=($BIRD)
    run_trials "bird-${ms}x${mult}" "$BIRD"
    kill -TERM "$BIRD"; wait "$BIRD" 2>/dev/null || true
    wait_status down
done

echo
echo "Detection time after SIGSTOP of the peer, as seen by FRR 8.4 bfdd (ms), $TRIALS trials each:"
python3 - "$RESULTS" <<'EOF'
import sys, collections, math
data = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v = line.split()
    data[k].append(float(v))
def pct(xs, p):  # nearest rank
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]
print("| peer frozen | timers | n | min | p50 | p95 | max |")
print("|---|---|---|---|---|---|---|")
for k in sorted(data, key=lambda k: (k.split("-")[1], k)):
    xs = data[k]
    peer, timers = k.split("-", 1)
    print(f"| {peer} | {timers.replace('x', ' ms x ')} | {len(xs)} | {min(xs):.0f} | {pct(xs,50):.0f} | {pct(xs,95):.0f} | {max(xs):.0f} |")
for t in sorted({k.split("-", 1)[1] for k in data}):
    o, b = data.get("ferrolb-" + t), data.get("bird-" + t)
    if o and b:
        print(f"\nratio ferrolb/BIRD at {t}: p50 {pct(o,50)/pct(b,50):.2f}, max {max(o)/max(b):.2f}")
EOF
