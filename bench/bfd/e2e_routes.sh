#!/usr/bin/env bash
# End-to-end failover: a node announces 203.0.113.10/32 over BGP (with or without BFD) to an FRR
# router (zebra + bgpd + bfdd); the node fails; how long until the router's kernel no longer has
# the route, and how much of that is detection (BFD Down or BGP session Down)?
#
#   sudo bash bench/bfd/e2e_routes.sh [TRIALS]                  # BIRD node, default 10 trials/row
#   sudo NODE=ferrolb bash bench/bfd/e2e_routes.sh [TRIALS]     # ferrolb-speaker AND BIRD, same run
#   sudo ROUTER=bird NODE=ferrolb bash bench/bfd/e2e_routes.sh  # BIRD 2 as the router instead of FRR
#   env: CONFIGS="bfd300 hold3" (also: bfd100, hold90), MODES="stop cut" (also: edit),
#        BIN=DIR (ferrolb binaries, default target/release), KINDS="ferrolb" (only those nodes),
#        SETTLE=SECONDS (up before each failure, default 1.5; 16 keeps every trial at the 1 s
#        reconnect hold-off, which doubles per session lost within 15 s of Established)
#
# Node: BIRD 2 (BGP + BFD; the peer baseline) or ferrolb-speaker (release build, standalone
# mode: the controller assigns 203.0.113.10 from a one-address pool, the speaker announces it
# over our BGP with our BFD; BGPPeer `bfdProfile` + a BFDProfile object).
# Configs: bfd300 = BFD 300 ms x 3 (detection 900 ms), BGP hold 90 s; bfd100 = BFD 100 ms x 3;
# hold3 = no BFD, BGP hold 3 s (keepalive 1 s); hold90 = no BFD, hold 90 s (slow: 1-2 trials).
# Modes: stop = the node process is frozen (kill -STOP); cut = the node's link is cut: the
# node's eth0 is set down; the router's side is a port of bridge br0, which stays up through a
# second port, so the router gets no interface-down event and must detect the failure itself
# (this kernel has no netem/tc drop actions to cut it otherwise). edit = the node's peer is
# edited first (its hold time changes by 1 s: ferrolb rewrites the BGPPeer, BIRD reconfigures;
# both reset the session), and once the route and BFD are back the node is frozen as in stop:
# the protection must survive a configuration change.
#
# Router: FRR 8.4 (zebra + bgpd + bfdd, default) or BIRD 2 (ROUTER=bird: bgp + bfd + kernel
# protocol; BIRD acts on BFD Down at once, with no work-queue holds like FRR's 70 ms).
# t0 = $EPOCHREALTIME before the builtin `kill -STOP` / `ip link set down`; t_det = FRR bfdd's
# `-> down` log line (BFD configs) or bgpd's `ADJCHANGE ... Down` line (hold configs), or
# BIRD's `Session to 192.0.2.11 changed state from Up to Down` / BGP `State changed to stop`
# trace lines, all microsecond log timestamps; t_route = `ip -ts monitor route` line
# `Deleted 203.0.113.10` in the router's namespace. Same host clock for all three.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=../stop.sh
source "$ROOT/bench/stop.sh"
TRIALS=${1:-10}
NODE=${NODE:-bird}
ROUTER=${ROUTER:-frr}
case "$ROUTER" in frr|bird) ;; *) echo "ROUTER=$ROUTER: expected frr or bird" >&2; exit 2 ;; esac
CONFIGS=${CONFIGS:-bfd300 hold3}
MODES=${MODES:-stop cut}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
case "$NODE" in
    bird) NODE_KINDS="bird" ;;
    ferrolb) NODE_KINDS="ferrolb bird" ;;
    *) echo "NODE=$NODE: expected bird or ferrolb" >&2; exit 2 ;;
esac
NODE_KINDS=${KINDS:-$NODE_KINDS}
SETTLE=${SETTLE:-1.5}
BIN=${BIN:-$ROOT/target/release}
if [ "$NODE" = ferrolb ]; then
    [ -x "$BIN/ferrolb-speaker" ] && [ -x "$BIN/ferrolb-controller" ] || {
        echo "build first: cargo build --release -p ferrolb-controller -p ferrolb-speaker" >&2; exit 1; }
fi

R=flb-bench-e2e-r-$$; N=flb-bench-e2e-n-$$
D=$(mktemp -d /tmp/flb-bench-e2e.XXXXXX); chmod 755 "$D"
PIDS=()
cleanup() {
    stop_pids "${PIDS[@]}"
    ip netns del "$R" 2>/dev/null || true
    ip netns del "$N" 2>/dev/null || true
    if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
echo "load before: $(cat /proc/loadavg)" >&2

ip netns add "$R"; ip netns add "$N"
ip -n "$R" link set lo up; ip -n "$N" link set lo up
ip -n "$R" link add br0 type bridge
ip -n "$R" link set br0 up
ip link add p-n netns "$R" type veth peer name eth0 netns "$N"
ip -n "$R" link add k0 type veth peer name k1       # keeps br0 up while p-n is down
ip -n "$R" link set p-n master br0 up; ip -n "$R" link set k0 master br0 up; ip -n "$R" link set k1 up
ip -n "$N" link set eth0 up
ip -n "$R" addr add 192.0.2.1/24 dev br0; ip -n "$N" addr add 192.0.2.11/24 dev eth0

start_frr_router() {
    F=$D/frr; mkdir -p "$F/run"; : > "$F/vtysh.conf"
    printf 'hostname r\nlog file %s/zebra.log\n' "$F" > "$F/zebra.conf"
    printf 'log file %s/bfdd.log\nlog timestamp precision 6\ndebug bfd peer\nbfd\n profile fast\n exit\nexit\n' "$F" > "$F/bfdd.conf"
    cat > "$F/bgpd.conf" <<EOF
log file $F/bgpd.log
log timestamp precision 6
router bgp 64512
 bgp router-id 192.0.2.1
 bgp log-neighbor-changes
 no bgp ebgp-requires-policy
 neighbor 192.0.2.11 remote-as 64513
 neighbor 192.0.2.11 timers connect 1
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
    for _ in $(seq 400); do [ -S "$F/run/bfdd.vty" ] && [ -S "$F/run/bgpd.vty" ] && vty -c 'show bfd peers' >/dev/null 2>&1 && break; sleep 0.05; done
}

# BIRD 2 as the router: BGP with BFD, routes exported to the kernel (the FIB we watch).
write_router_bird_config() {
    local bfd_proto="" bfd_on="bfd off;"
    if [ -n "$BFD_MS" ]; then
        bfd_proto="protocol bfd rbfd { interface \"br0\" { min rx interval $BFD_MS ms; min tx interval $BFD_MS ms; multiplier 3; }; debug { states, events }; }"
        bfd_on="bfd on;"
    fi
    cat > "$F/bird.conf" <<EOF
log "$F/bird.log" all;
timeformat log "%F %T.%6f";
router id 192.0.2.1;
protocol device { }
protocol kernel { ipv4 { import none; export all; }; }
$bfd_proto
protocol bgp node {
  local 192.0.2.1 as 64512;
  neighbor 192.0.2.11 as 64513;
  $bfd_on
  hold time $HOLD; keepalive time $KEEPALIVE;
  connect retry time 1; error wait time 1, 5;
  debug { states };
  ipv4 { import all; export none; };
}
EOF
}
start_bird_router() {
    F=$D/rbird; mkdir -p "$F"
    BFD_MS=""; HOLD=90; KEEPALIVE=30
    write_router_bird_config
    ip netns exec "$R" bird -f -c "$F/bird.conf" -s "$F/bird.ctl" >/dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 200); do [ -S "$F/bird.ctl" ] && break; sleep 0.05; done
}
rbirdc() { ip netns exec "$R" birdc -s "$F/bird.ctl" "$@"; }
vty() { vtysh --config_dir "$F" --vty_socket "$F/run" "$@"; }
"start_${ROUTER}_router"

ip netns exec "$R" ip -ts monitor route > "$D/monitor.txt" 2>/dev/null &
PIDS+=($!)

route_present() { ip -n "$R" route show 203.0.113.10 | grep -q .; }
wait_route() { # present|absent, bounded 120 s (hold90 needs 90 s; BIRD reconnects after its error wait)
    for _ in $(seq 2400); do
        if [ "$1" = present ]; then route_present && return 0; else route_present || return 0; fi
        sleep 0.05
    done
    echo "timeout waiting for route $1" >&2; return 1
}
bfd_up() {
    if [ "$ROUTER" = bird ]; then
        rbirdc show bfd sessions 2>/dev/null | grep -q '192.0.2.11.* Up'
    else
        vty -c 'show bfd peers brief' 2>/dev/null | grep -q '192.0.2.11.* up'
    fi
}

# config NAME -> sets BFD_MS (empty: no BFD), HOLD, KEEPALIVE
config() {
    case "$1" in
        bfd300) BFD_MS=300; HOLD=90; KEEPALIVE=30 ;;
        bfd100) BFD_MS=100; HOLD=90; KEEPALIVE=30 ;;
        hold3)  BFD_MS=""; HOLD=3; KEEPALIVE=1 ;;
        hold90) BFD_MS=""; HOLD=90; KEEPALIVE=30 ;;
        *) echo "unknown config $1" >&2; exit 2 ;;
    esac
}

configure_router() {
    if [ "$ROUTER" = bird ]; then
        write_router_bird_config
        rbirdc configure >/dev/null || echo "  birdc configure (router) failed" >&2
        rbirdc restart node >/dev/null 2>&1 || true
        return
    fi
    local bfd=(-c 'no neighbor 192.0.2.11 bfd')
    if [ -n "$BFD_MS" ]; then
        vty -c 'conf t' -c 'bfd' -c 'profile fast' -c "receive-interval $BFD_MS" -c "transmit-interval $BFD_MS" -c "detect-multiplier 3" -c 'end' >/dev/null
        bfd=(-c 'neighbor 192.0.2.11 bfd' -c 'neighbor 192.0.2.11 bfd profile fast')
    fi
    vty -c 'conf t' -c 'router bgp 64512' -c "neighbor 192.0.2.11 timers $KEEPALIVE $HOLD" "${bfd[@]}" -c 'end' >/dev/null
    vty -c 'clear bgp *' >/dev/null 2>&1 || true
}

start_bird() {
    write_bird_config "$HOLD"
    ip netns exec "$N" bird -f -c "$D/bird.conf" -s "$D/bird.ctl" >/dev/null 2>&1 &
    NODE_PID=$!; PIDS+=($NODE_PID)
}

write_bird_config() { # HOLD
    local bfd_proto="" bfd_on="bfd off;"
    if [ -n "$BFD_MS" ]; then
        bfd_proto="protocol bfd { interface \"eth0\" { min rx interval $BFD_MS ms; min tx interval $BFD_MS ms; multiplier 3; }; }"
        bfd_on="bfd on;"
    fi
    cat > "$D/bird.conf" <<EOF
router id 192.0.2.11;
protocol device { }
protocol static svc { ipv4; route 203.0.113.10/32 blackhole; }
$bfd_proto
protocol bgp tor {
  local 192.0.2.11 as 64513;
  neighbor 192.0.2.1 as 64512;
  $bfd_on
  hold time $1; keepalive time $KEEPALIVE;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  ipv4 { import none; export where proto = "svc"; next hop self; };
}
EOF
}

CTL_PID=""
start_ferrolb() {
    write_ferrolb_config "$HOLD"
    if [ -z "$CTL_PID" ]; then
        ip netns exec "$N" "$BIN/ferrolb-controller" --manifests "$D/m" --metrics-addr 127.0.0.1:7472 >>"$D/controller.log" 2>&1 &
        CTL_PID=$!; PIDS+=($CTL_PID)
    fi
    ip netns exec "$N" "$BIN/ferrolb-speaker" --node n1 --manifests "$D/m" --metrics-addr 127.0.0.1:7473 >>"$D/speaker.log" 2>&1 &
    NODE_PID=$!; PIDS+=($NODE_PID)
}

write_ferrolb_config() { # HOLD
    local m=$D/m; mkdir -p "$m"
    local bfd_ref="" bfd_obj=""
    if [ -n "$BFD_MS" ]; then
        bfd_ref=", bfdProfile: fast"
        bfd_obj="---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec: {receiveInterval: $BFD_MS, transmitInterval: $BFD_MS, detectMultiplier: 3}"
    fi
    cat > "$m/.config.tmp" <<EOF
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: one, namespace: ferrolb-system}
spec: {addresses: [203.0.113.10/32]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ferrolb-system}
spec: {ipAddressPools: [one]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1, holdTime: ${1}s, keepaliveTime: ${KEEPALIVE}s, connectTime: 1s$bfd_ref}
$bfd_obj
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-a, namespace: default, labels: {kubernetes.io/service-name: svc}}
addressType: IPv4
endpoints: [{addresses: [192.0.2.11], nodeName: n1, conditions: {ready: true}}]
EOF
    mv "$m/.config.tmp" "$m/config.yaml"
}

EDITS=0
edit_peer() { # KIND: change the peer's hold time by 1 s (a session reset), wait for the reset
    EDITS=$((EDITS + 1))
    local hold=$((HOLD + EDITS % 2))
    if [ "$1" = ferrolb ]; then
        write_ferrolb_config "$hold"
    else
        write_bird_config "$hold"
        ip netns exec "$N" birdc -s "$D/bird.ctl" configure >/dev/null || echo "  birdc configure failed" >&2
    fi
    for _ in $(seq 100); do route_present || return 0; sleep 0.05; done   # bounded: 5 s
    echo "  (no session reset seen within 5 s of the edit)" >&2
}

RESULTS=$D/results.txt; : > "$RESULTS"
for kind in $NODE_KINDS; do
    for cfg in $CONFIGS; do
        config "$cfg"
        configure_router
        n=$TRIALS; [ "$cfg" = hold90 ] && n=$(( TRIALS < 2 ? TRIALS : 2 ))
        "start_$kind"
        for mode in $MODES; do
            echo "== node $kind, $cfg, $mode" >&2
            for i in $(seq "$n"); do
                if [ "$mode" = edit ]; then edit_peer "$kind"; fi
                if ! wait_route present; then
                    echo "$kind $cfg $mode failed failed" >> "$RESULTS"; continue
                fi
                if [ -n "$BFD_MS" ]; then
                    for _ in $(seq 400); do bfd_up && break; sleep 0.05; done   # lab pitfall 2: BFD lags BGP
                fi
                sleep "$SETTLE"
                t0=$EPOCHREALTIME
                if [ "$mode" = cut ]; then ip -n "$N" link set eth0 down; else kill -STOP "$NODE_PID"; fi
                wait_route absent || true
                sleep 0.1
                if [ "$mode" = cut ]; then ip -n "$N" link set eth0 up; else kill -CONT "$NODE_PID"; fi
                python3 - "$t0" "$F/bfdd.log" "$F/bgpd.log" "$D/monitor.txt" "$kind $cfg $mode" "${BFD_MS:+bfd}" "$ROUTER" "$F/bird.log" >> "$RESULTS" <<'EOF'
import sys, datetime
t0 = float(sys.argv[1])
def utc(s, fmt):
    return datetime.datetime.strptime(s, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()
def logts(l):
    for fmt in ("%Y/%m/%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f"):  # FRR, BIRD
        try:
            return utc(" ".join(l.split()[:2]), fmt)
        except ValueError:
            pass
    return None
def first(path, pred):
    for l in open(path, errors="replace"):
        t = logts(l)
        if t is not None and t >= t0 and pred(l):
            return t
    return None
if sys.argv[7] == "bird" and sys.argv[6] == "bfd":
    det = first(sys.argv[8], lambda l: "Session to 192.0.2.11 changed state from Up to Down" in l)
elif sys.argv[7] == "bird":
    det = first(sys.argv[8], lambda l: "node: State changed to stop" in l)
elif sys.argv[6] == "bfd":
    det = first(sys.argv[2], lambda l: "peer:192.0.2.11" in l and "-> down" in l)
else:
    det = first(sys.argv[3], lambda l: "ADJCHANGE" in l and "192.0.2.11" in l and "Down" in l)
route = next((utc(l[1:27], "%Y-%m-%dT%H:%M:%S.%f") for l in open(sys.argv[4])
              if "Deleted 203.0.113.10" in l and utc(l[1:27], "%Y-%m-%dT%H:%M:%S.%f") >= t0), None)
if route is None:
    print(f"# {sys.argv[5]} trial without route delete", file=sys.stderr)
    print(sys.argv[5], "failed", "failed")
else:
    print(sys.argv[5], f"{(det - t0) * 1000:.1f}" if det else "-", f"{(route - t0) * 1000:.1f}")
EOF
                tail -1 "$RESULTS" | awk '{print "  trial: detected (BFD/BGP down) " $4 " ms, route gone " $5 " ms"}' >&2
            done
        done
        kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
        wait_route absent || true
    done
done
echo "load after: $(cat /proc/loadavg)" >&2

echo
echo "Node failure -> $ROUTER: detected (BFD Down / BGP Down) / kernel route deleted (ms after t0), $TRIALS trials per row:"
python3 - "$RESULTS" <<'EOF'
import sys, collections, math
rows = collections.defaultdict(list)
failed = collections.Counter()
for l in open(sys.argv[1]):
    node, cfg, mode, d, r = l.split()
    k = (node, cfg, mode)
    if r == "failed":
        failed[k] += 1; rows.setdefault(k, []); continue
    rows[k].append((None if d == "-" else float(d), float(r)))
def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]
def s(xs):
    return f"{pct(xs,50):.0f} / {pct(xs,95):.0f} / {max(xs):.0f}" if xs else "-"
print("| node | config | failure | n | failed | detected p50 / p95 / max | route gone p50 / p95 / max | route − detected, max |")
print("|---|---|---|---|---|---|---|---|")
for k, v in rows.items():
    d = [x for x, _ in v if x is not None]; r = [y for _, y in v]
    gap = [y - x for x, y in v if x is not None]
    print(f"| {k[0]} | {k[1]} | {k[2]} | {len(v)} | {failed[k]} | {s(d)} | {s(r)} | {max(gap):.0f} |" if gap else
          f"| {k[0]} | {k[1]} | {k[2]} | {len(v)} | {failed[k]} | {s(d)} | {s(r)} | - |")
EOF
