#!/usr/bin/env bash
# ferrolb lab: the main job, end to end, on one Debian machine with no cluster.
#
#   sudo bash examples/lab/run.sh            # build, set up, run the four scenarios, clean up
#   sudo bash examples/lab/run.sh --keep     # leave the lab running until Ctrl-C (explore it)
#
# Topology (all inside network namespaces this script creates; documentation addresses only):
#
#     client-out 198.51.100.2 ── r (FRR: zebra+bgpd, ECMP, L4 hash) 198.51.100.1
#                                 │ br0 192.0.2.1/24  (one L2 segment)
#        ┌────────────┬───────────┼─────────────┬──────────────┐
#     n1 192.0.2.11  n2 192.0.2.12  n3 192.0.2.13   client-l2 192.0.2.50
#     (speaker + HTTP backend on each node; the controller runs in its own namespace)
#
# Service "web-l2" gets an IP from pool l2-pool (192.0.2.200-192.0.2.210, on the segment: one
# node answers ARP for it). Service "web-bgp" gets an IP from pool bgp-pool (203.0.113.0/28):
# every node announces it over BGP to r, which installs a 3-way ECMP route.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
P=flblab                 # namespace prefix; fixed so a re-run can clean a previous run's leftovers
NODES=(n1 n2 n3)
declare -A NODE_IP=([n1]=192.0.2.11 [n2]=192.0.2.12 [n3]=192.0.2.13)
declare -A NODE_IP6=([n1]=2001:db8:1::11 [n2]=2001:db8:1::12 [n3]=2001:db8:1::13)
PIDS=()

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '   %s\n' "$*"; }
die()  { printf '\n\033[31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }
# Runs a command in a lab namespace. Never background it with `&`: `$!` would be the subshell,
# not the program (long-running processes use `ip netns exec` directly, which execs).
ns()   { ip netns exec "$P-$1" "${@:2}"; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces need it): sudo bash $0"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ ${#PIDS[@]} -gt 0 ] && kill -TERM "${PIDS[@]}" 2>/dev/null || true
    for _ in $(seq 30); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break; sleep 0.1
    done
    [ ${#PIDS[@]} -gt 0 ] && kill -KILL "${PIDS[@]}" 2>/dev/null || true
    for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$n" 2>/dev/null || true
    done
    if [ -n "${WORK:-}" ]; then
        if [ $rc = 0 ]; then rm -rf "$WORK"; else echo "logs kept in $WORK" >&2; fi
    fi
    [ "${FRR_TMP_CREATED:-0}" = 1 ] && rmdir /var/tmp/frr 2>/dev/null || true
    [ $rc = 0 ] || echo "lab cleaned up after failure (exit $rc)" >&2
    exit $rc
}

# --- 0. leftovers of an interrupted run, packages, binaries -----------------------------------
for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$n"
done
say "Installing missing Debian packages (frr, iproute2, arping, curl, ...)"
# shellcheck source=../../scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"
install_test_deps
say "Building release binaries"
(cd "$ROOT" && cargo build --release --locked -q -p ferrolb-controller -p ferrolb-speaker)
BIN="$ROOT/target/release"

trap cleanup EXIT INT TERM
WORK=$(mktemp -d /tmp/ferrolb-lab.XXXXXX)
chmod 755 "$WORK"   # FRR's daemons drop to user frr and must reach their directory
[ -d /var/tmp/frr ] && FRR_TMP_CREATED=0 || FRR_TMP_CREATED=1

# --- 1. topology -------------------------------------------------------------------------------
say "Creating namespaces: router r, nodes n1-n3, client-l2, client-out, controller ctl"
for n in r "${NODES[@]}" cl2 cout ctl; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
ip -n $P-r link add br0 type bridge
ip -n $P-r link set br0 up
ip -n $P-r addr add 192.0.2.1/24 dev br0
ip -n $P-r addr add 2001:db8:1::1/64 dev br0 nodad
for n in "${NODES[@]}" cl2; do
    ip link add "p-$n" netns $P-r type veth peer name eth0 netns "$P-$n"
    ip -n $P-r link set "p-$n" master br0 up
    ip -n "$P-$n" link set eth0 up
done
for n in "${NODES[@]}"; do
    ip -n "$P-$n" addr add "${NODE_IP[$n]}/24" dev eth0
    ip -n "$P-$n" addr add "${NODE_IP6[$n]}/64" dev eth0 nodad
    ip -n "$P-$n" route add default via 192.0.2.1
    # The node's kernel accepts traffic for Service IPs (kube-proxy's job on a real node): put
    # them on lo, and keep the kernel from answering ARP for them on eth0 (the speaker does).
    ns "$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
done
ip -n $P-cl2 addr add 192.0.2.50/24 dev eth0
ip link add p-cout netns $P-r type veth peer name eth0 netns $P-cout
ip -n $P-r link set p-cout up
ip -n $P-r addr add 198.51.100.1/24 dev p-cout
ip -n $P-cout link set eth0 up
ip -n $P-cout addr add 198.51.100.2/24 dev eth0
ip -n $P-cout route add 203.0.113.0/24 via 198.51.100.1
ns r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1

# --- 2. the router: FRR zebra + bgpd in namespace r --------------------------------------------
say "Starting FRR (zebra + bgpd) as the ToR router, AS 64512, accepting nodes from 192.0.2.0/24"
FRR="$WORK/frr"; mkdir -p "$FRR/run"; : > "$FRR/vtysh.conf"
cat > "$FRR/zebra.conf" <<CONF
hostname r
log file $FRR/zebra.log
CONF
cat > "$FRR/bgpd.conf" <<CONF
router bgp 64512
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 bgp bestpath as-path multipath-relax
 neighbor NODES peer-group
 neighbor NODES remote-as 64513
 neighbor NODES timers connect 1
 bgp listen range 192.0.2.0/24 peer-group NODES
 address-family ipv4 unicast
  neighbor NODES activate
  maximum-paths 8
 exit-address-family
exit
CONF
chown -R frr:frr "$FRR"
FRRARGS=(-u frr -g frr --vty_socket "$FRR/run" -z "$FRR/run/zserv.api")
ip netns exec $P-r /usr/lib/frr/zebra "${FRRARGS[@]}" -f "$FRR/zebra.conf" -i "$FRR/run/zebra.pid" >"$FRR/zebra.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$FRR/run/zserv.api" ] && break; sleep 0.1; done
[ -S "$FRR/run/zserv.api" ] || die "zebra did not start (see $FRR/zebra.out)"
ip netns exec $P-r /usr/lib/frr/bgpd "${FRRARGS[@]}" -f "$FRR/bgpd.conf" -i "$FRR/run/bgpd.pid" >"$FRR/bgpd.out" 2>&1 &
PIDS+=($!)
vty() { ip netns exec $P-r vtysh --config_dir "$FRR" --vty_socket "$FRR/run" -c "$1" 2>/dev/null; }

# --- 3. backends, manifests, controller, speakers ------------------------------------------------
say "Starting an HTTP backend on every node (it answers with the node's name)"
for n in "${NODES[@]}"; do
    mkdir -p "$WORK/www-$n"; echo "$n" > "$WORK/www-$n/index.html"
    ip netns exec "$P-$n" python3 -m http.server --bind 0.0.0.0 --directory "$WORK/www-$n" 8080 >/dev/null 2>&1 &
    PIDS+=($!)
done

M="$WORK/manifests"; mkdir -p "$M"
cp "$HERE/manifests/"*.yaml "$M/"
info "manifests in $M: $(cd "$M" && ls | tr '\n' ' ')"

say "Starting the controller (standalone mode: --manifests $M)"
ip netns exec $P-ctl "$BIN/ferrolb-controller" --manifests "$M" --metrics-addr 127.0.0.1:7472 >"$WORK/controller.log" 2>&1 &
PIDS+=($!)
declare -A SPEAKER_PID
head -c 32 /dev/urandom > "$WORK/members.key"
SEEDS=$(for n in "${NODES[@]}"; do printf '%s:7946,' "${NODE_IP[$n]}"; done); SEEDS=${SEEDS%,}
start_speaker() {
    local n=$1
    ip netns exec "$P-$n" "$BIN/ferrolb-speaker" --node "$n" --manifests "$M" \
        --members-bind "${NODE_IP[$n]}:7946" --members-seeds "$SEEDS" \
        --members-key-file "$WORK/members.key" --metrics-addr "${NODE_IP[$n]}:7473" \
        >>"$WORK/speaker-$n.log" 2>&1 &
    disown "$!"   # no "Killed" job notice when scenario 3 kills it
    SPEAKER_PID[$n]=$!; PIDS+=($!)
}
say "Starting a speaker on each node"
for n in "${NODES[@]}"; do start_speaker "$n"; done

# Wait (bounded) for the controller to assign both IPs.
status_ip() { # service name -> first ingress IP from the controller's status file
    awk -v svc="$1" '
        $1=="name:" && $2==svc {found=1}
        found && $1=="-" && $2=="ip:" {print $3; exit}
        found && $1=="ip:" {print $2; exit}' "$M/.ferrolb/status.yaml" 2>/dev/null | tr -d '"' || true
}
for _ in $(seq 100); do
    L2_IP=$(status_ip web-l2); BGP_IP=$(status_ip web-bgp)
    [ -n "$L2_IP" ] && [ -n "$BGP_IP" ] && break; sleep 0.1
done
[ -n "${L2_IP:-}" ] && [ -n "${BGP_IP:-}" ] || die "controller did not assign IPs (see $WORK/controller.log)"
info "controller assigned web-l2 -> $L2_IP, web-bgp -> $BGP_IP"
for n in "${NODES[@]}"; do
    ip -n "$P-$n" addr add "$L2_IP/32" dev lo
    ip -n "$P-$n" addr add "$BGP_IP/32" dev lo
done

# --- 4. scenario 1: L2 ---------------------------------------------------------------------------
say "1. L2: $L2_IP answers the client on the segment from its owner node"
owner=""
for _ in $(seq 50); do
    owner=$(ns cl2 curl -s --max-time 1 "http://$L2_IP:8080/" || true)
    [ -n "$owner" ] && break; sleep 0.2
done
[ -n "$owner" ] || die "no answer from $L2_IP (see $WORK/speaker-*.log)"
mac=$(ip -n $P-cl2 neigh show "$L2_IP" | awk '{print $5}')
info "curl http://$L2_IP:8080/ from client-l2 -> \"$owner\""
info "client-l2's neighbour table: $L2_IP lladdr $mac (node $owner's eth0 is $(ip -n "$P-$owner" link show eth0 | awk '/ether/{print $2}'))"

# --- 5. scenario 2: BGP + ECMP ------------------------------------------------------------------
say "2. BGP: $BGP_IP with three equal-cost next hops on the router"
paths=0
for _ in $(seq 100); do
    paths=$(ip -n $P-r route show "$BGP_IP" | grep -c 'nexthop via' || true)
    [ "$paths" = 3 ] && break; sleep 0.1
done
ip -n $P-r route show "$BGP_IP" | sed 's/^/   /'
[ "$paths" = 3 ] || die "expected 3 next hops for $BGP_IP, got $paths (vtysh: $(vty 'show bgp summary'))"
declare -A hits=([n1]=0 [n2]=0 [n3]=0)
for port in $(seq 40001 40030); do
    who=$(ns cout curl -s --max-time 2 --local-port "$port" "http://$BGP_IP:8080/" || true)
    [ -n "$who" ] && hits[$who]=$(( ${hits[$who]:-0} + 1 ))
done
info "30 requests from client-out (behind the router): n1=${hits[n1]} n2=${hits[n2]} n3=${hits[n3]}"
[ "${hits[n1]}" -gt 0 ] && [ "${hits[n2]}" -gt 0 ] && [ "${hits[n3]}" -gt 0 ] || die "traffic did not reach all three nodes"

# --- 6. scenario 3: L2 failover ----------------------------------------------------------------
say "3. L2 failover: node $owner dies (speaker kill -9 and its link down)"
t0=$(date +%s%N)
kill -KILL "${SPEAKER_PID[$owner]}"
ip -n "$P-$owner" link set eth0 down
new=""
for _ in $(seq 400); do
    new=$(ns cl2 curl -s --max-time 0.2 "http://$L2_IP:8080/" || true)
    [ -n "$new" ] && [ "$new" != "$owner" ] && break; new=""
done
t1=$(date +%s%N)
[ -n "$new" ] || die "no other node took over $L2_IP"
info "$L2_IP now answered by $new, $(( (t1 - t0) / 1000000 )) ms after the kill (curl polling, ~200 ms resolution)"
ip -n "$P-$owner" link set eth0 up
start_speaker "$owner"

# --- 7. scenario 4: delete the Services ----------------------------------------------------------
say "4. Deleting both Services: the route leaves the router and ARP goes unanswered"
rm -f "$M/services.yaml"
gone=0
for _ in $(seq 100); do
    ip -n $P-r route show "$BGP_IP" | grep -q . || { gone=1; break; }; sleep 0.1
done
[ $gone = 1 ] || die "route to $BGP_IP still on the router"
info "ip route show $BGP_IP on the router: (nothing)"
ip -n $P-cl2 neigh flush all
if ns cl2 arping -c 2 -w 2 -I eth0 "$L2_IP" >/dev/null 2>&1; then die "$L2_IP still answers ARP"; fi
info "arping $L2_IP from client-l2: no reply"

say "All four scenarios passed."
if [ $KEEP = 1 ]; then
    info "Lab left running; namespaces: $(ip netns list | awk '{print $1}' | grep "^$P-" | tr '\n' ' ')"
    info "logs in $WORK. Press Ctrl-C to tear it down."
    while true; do sleep 3600; done
fi
