#!/usr/bin/env bash
# BGP announcement benchmark: 100k IPv4 /32 + 20k IPv6 /128 sent to a BIRD receiver in a
# network namespace by three senders, one after the other, in the same run:
#   ferrolb  (bgp/examples/bgp_announce.rs, routes set before the session comes up)
#   gobgpd   (routes loaded into its global RIB from a feeder BIRD before the receiver starts)
#   bird     (static routes)
# For each: time from Established to the last prefix accepted by the receiver (polling the
# channel counters of `birdc show protocols all`, a few ms resolution), time on the wire to the last UPDATE, UPDATE
# count/bytes (from a pcap), and for ferrolb the RSS of the sender holding the routes.
#
#   sudo bench/bgp/run.sh [V4_COUNT] [V6_COUNT]
#
# IPv4 routes come from 198.18.0.0/15 (RFC 2544 benchmarking range): 100k distinct /32s do not
# fit in the documentation ranges. They only exist inside the namespaces; no packet is sent
# to them.
set -euo pipefail
cd "$(dirname "$0")/../.."
V4=${1:-100000}
V6=${2:-20000}
TOTAL=$((V4 + V6))
W=$(mktemp -d /tmp/flb-bgpbench.XXXXXX)
TAG="flbb$$"
R=$TAG-r; S=$TAG-s; F=$TAG-f
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    for ns in $R $S $F; do ip netns del "$ns" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

echo "== building the ferrolb sender (release)" >&2
cargo build -q --release -p ferrolb-bgp --example bgp_announce
ANNOUNCE=$PWD/target/release/examples/bgp_announce

gen_static() { # $1 = file: BIRD static protocols with the benchmark routes
    python3 - "$1" "$V4" "$V6" <<'PY'
import ipaddress, sys
f, n4, n6 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b4 = int(ipaddress.IPv4Address('198.18.0.0')); b6 = int(ipaddress.IPv6Address('2001:db8:100::'))
with open(f, 'w') as o:
    o.write('protocol static s4 { ipv4;\n')
    for i in range(n4): o.write(f' route {ipaddress.IPv4Address(b4 + i)}/32 blackhole;\n')
    o.write('}\nprotocol static s6 { ipv6;\n')
    for i in range(n6): o.write(f' route {ipaddress.IPv6Address(b6 + i)}/128 blackhole;\n')
    o.write('}\n')
PY
}

setup() { # fresh receiver R (192.0.2.1) and sender S (192.0.2.10) namespaces
    for ns in $R $S $F; do ip netns del "$ns" 2>/dev/null || true; done
    ip netns add $R; ip netns add $S
    ip -n $R link set lo up; ip -n $S link set lo up
    ip link add eth0 netns $R type veth peer name eth0 netns $S
    ip -n $R link set eth0 up; ip -n $S link set eth0 up
    ip -n $R addr add 192.0.2.1/24 dev eth0; ip -n $S addr add 192.0.2.10/24 dev eth0
    ip -n $R addr add 2001:db8::1/64 dev eth0 nodad; ip -n $S addr add 2001:db8::10/64 dev eth0 nodad
}

start_receiver() { # $1 = run name
    cat > "$W/recv-$1.conf" <<B
log "$W/recv-$1.log" all;
router id 192.0.2.1;
protocol device {}
protocol bgp sender {
  local 192.0.2.1 as 64513; neighbor 192.0.2.10 as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
B
    ip netns exec $R bird -f -c "$W/recv-$1.conf" -s "$W/recv.ctl" & PIDS+=($!)
    for _ in $(seq 100); do birdc -s "$W/recv.ctl" show status >/dev/null 2>&1 && break; sleep 0.05; done
    ip netns exec $R tcpdump -q --immediate-mode -i eth0 -s 0 -B 32768 -U -w "$W/$1.pcap" tcp port 179 2>"$W/$1.tcpdump.err" & PIDS+=($!)
    TCPDUMP=$!
    sleep 0.5
}

wait_accepted() { # prints the wall-clock time when the receiver holds TOTAL routes
    local deadline=$(( $(date +%s) + 120 ))
    while [ "$(date +%s)" -lt $deadline ]; do
        # Channel counters ("Routes: N imported") are cheap; `show route count` would walk
        # the table on BIRD's single thread and slow down the import being measured.
        n=$(birdc -s "$W/recv.ctl" show protocols all sender 2>/dev/null \
            | awk '/Routes:/ && /imported/ {s += $2} END {print s + 0}' || true)
        if [ "${n:-0}" -ge "$TOTAL" ]; then date +%s.%N; return 0; fi
        sleep 0.002
    done
    echo "timeout: receiver has ${n:-0} of $TOTAL routes" >&2; return 1
}

report() { # $1 name, $2 accepted wall time
    sleep 1; kill "$TCPDUMP" 2>/dev/null || true; sleep 0.5
    python3 bench/bgp/analyze.py "$W/$1.pcap" 192.0.2.10 > "$W/$1.json"
    python3 - "$1" "$2" "$W/$1.json" <<'PY'
import json, sys
name, acc, j = sys.argv[1], float(sys.argv[2]), json.load(open(sys.argv[3]))
j['accept_ms'] = round((acc - j['established']) * 1e3, 1)
print(f"{name:8} accept_ms={j['accept_ms']:>9} wire_ms={j['wire_ms']:>9} updates={j['updates']:>6} bytes={j['update_bytes']:>9}")
json.dump(j, open(sys.argv[3], 'w'))
PY
}

stop_all() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.5; PIDS=()
}

echo "== $V4 IPv4 /32 + $V6 IPv6 /128 to a BIRD receiver" >&2

# 1. ferrolb
setup; start_receiver ferrolb
ip netns exec $S "$ANNOUNCE" --router-id 192.0.2.10 --peer 192.0.2.1 --local-as 64512 \
    --peer-as 64513 --v4 "$V4" --v6 "$V6" --next-hop6 2001:db8::10 > "$W/ferrolb.out" & PIDS+=($!)
ACC=$(wait_accepted)
report ferrolb "$ACC"
for _ in $(seq 100); do [ -s "$W/ferrolb.out" ] && break; sleep 0.05; done
echo "ferrolb  sender: $(cat "$W/ferrolb.out")"
stop_all

# A BIRD that sends every static route (static.conf) to one peer:
# bird_sender FILE PROTOCOL LOCAL_IP LOCAL_AS PEER_IP PEER_AS
bird_sender() {
    cat > "$1" <<B
router id $3;
protocol device {}
include "$W/static.conf";
protocol bgp $2 {
  local $3 as $4; neighbor $5 as $6;
  connect delay time 1; connect retry time 1;
  ipv4 { import none; export all; };
  ipv6 { import none; export all; next hop address 2001:db8::10; };
}
B
}

# 2. gobgpd, its RIB loaded from a feeder BIRD before the receiver exists
setup
ip netns add $F; ip -n $F link set lo up
ip link add eth1 netns $F type veth peer name eth1 netns $S
ip -n $F link set eth1 up; ip -n $S link set eth1 up
ip -n $F addr add 198.51.100.2/24 dev eth1; ip -n $S addr add 198.51.100.1/24 dev eth1
gen_static "$W/static.conf"
bird_sender "$W/feeder.conf" gobgp 198.51.100.2 64600 198.51.100.1 64512
# eBGP next-hop-self would give IPv6 routes an IPv4-mapped next hop over this IPv4 session;
# an export policy sets the same IPv6 next hop the other senders use.
cat > "$W/gobgpd.toml" <<G
[global.config]
  as = 64512
  router-id = "192.0.2.10"
[global.apply-policy.config]
  export-policy-list = ["v6nh"]
  default-export-policy = "accept-route"
[[defined-sets.prefix-sets]]
  prefix-set-name = "v6all"
  [[defined-sets.prefix-sets.prefix-list]]
    ip-prefix = "::/0"
    masklength-range = "0..128"
[[policy-definitions]]
  name = "v6nh"
  [[policy-definitions.statements]]
    name = "s1"
    [policy-definitions.statements.conditions.match-prefix-set]
      prefix-set = "v6all"
    [policy-definitions.statements.actions]
      route-disposition = "accept-route"
    [policy-definitions.statements.actions.bgp-actions]
      set-next-hop = "2001:db8::10"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.51.100.2"
    peer-as = 64600
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.0.2.1"
    peer-as = 64513
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
G
ip netns exec $S gobgpd -f "$W/gobgpd.toml" --api-hosts 127.0.0.1:50051 > "$W/gobgpd.log" 2>&1 & PIDS+=($!)
ip netns exec $F bird -f -c "$W/feeder.conf" -s "$W/feeder.ctl" & PIDS+=($!)
G="ip netns exec $S gobgp -u 127.0.0.1 -p 50051"
loaded=0
for _ in $(seq 600); do
    a=$($G global rib summary -a ipv4 2>/dev/null | awk '/Destination/ {gsub(",","",$2); print $2}' || true)
    b=$($G global rib summary -a ipv6 2>/dev/null | awk '/Destination/ {gsub(",","",$2); print $2}' || true)
    if [ "${a:-0}" -ge "$V4" ] && [ "${b:-0}" -ge "$V6" ]; then loaded=1; break; fi
    sleep 0.2
done
[ $loaded = 1 ] || { echo "gobgpd RIB not loaded (${a:-0}/${b:-0})" >&2; exit 1; }
start_receiver gobgp
ACC=$(wait_accepted)
report gobgp "$ACC"
stop_all
ip netns del $F

# 3. BIRD with static routes
setup
bird_sender "$W/sender.conf" recv 192.0.2.10 64512 192.0.2.1 64513
start_receiver bird
ip netns exec $S bird -f -c "$W/sender.conf" -s "$W/sender.ctl" & PIDS+=($!)
ACC=$(wait_accepted)
report bird "$ACC"
stop_all

python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
r = {n: json.load(open(f"{w}/{n}.json")) for n in ("ferrolb", "gobgp", "bird")}
f = r["ferrolb"]["accept_ms"]
for n in ("gobgp", "bird"):
    print(f"ratio accept_ms {n}/ferrolb = {r[n]['accept_ms'] / f:.1f}x")
PY
