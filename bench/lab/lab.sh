# Sourced helper for the lab benchmarks: the topology of examples/lab/run.sh (FRR router r on
# br0 192.0.2.1/24, nodes n1-n3 192.0.2.11-13 each running ferrolb-speaker, client cl2
# 192.0.2.50 on the segment, the controller in ctl), with a namespace prefix of its own so a
# benchmark can run next to the example lab. Documentation addresses only.
#
#   source bench/lab/lab.sh; lab_setup; ...; (cleanup runs on EXIT)
#
# Needs: ROOT (repository root). Sets: P, WORK, M (manifests dir), BIN, FRR, NODES, NODE_IP,
# NODE_MAC, SPEAKER_PID; functions ns, vty, start_speaker, metric, members_converged, l2_owner.
P=${P:-flbbench}
NODES=(n1 n2 n3)
declare -A NODE_IP=([n1]=192.0.2.11 [n2]=192.0.2.12 [n3]=192.0.2.13)
declare -A NODE_MAC SPEAKER_PID
PIDS=()
BIN=${BIN:-$ROOT/target/release}

# Not for background jobs: `ns ... &` forks a subshell whose pid is not the program's.
ns()  { ip netns exec "$P-$1" "${@:2}"; }
die() { echo "FAILED: $*" >&2; exit 1; }

lab_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break; sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$n" 2>/dev/null || true
    done
    if [ -n "${WORK:-}" ]; then
        if [ $rc = 0 ] && [ "${KEEP_LOGS:-0}" = 0 ]; then rm -rf "$WORK"; else echo "logs kept in $WORK" >&2; fi
    fi
    exit $rc
}

lab_setup() {
    [ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
    [ -x "$BIN/ferrolb-speaker" ] && [ -x "$BIN/ferrolb-controller" ] ||
        die "build first: cargo build --release -p ferrolb-controller -p ferrolb-speaker"
    for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$n"
    done
    trap lab_cleanup EXIT INT TERM
    WORK=$(mktemp -d /tmp/ferrolb-bench-lab.XXXXXX); chmod 755 "$WORK"
    for n in r "${NODES[@]}" cl2 ctl; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
    ip -n "$P-r" link add br0 type bridge
    ip -n "$P-r" link set br0 up
    ip -n "$P-r" addr add 192.0.2.1/24 dev br0
    for n in "${NODES[@]}" cl2; do
        ip link add "p-$n" netns "$P-r" type veth peer name eth0 netns "$P-$n"
        ip -n "$P-r" link set "p-$n" master br0 up
        ip -n "$P-$n" link set eth0 up
    done
    for n in "${NODES[@]}"; do
        ip -n "$P-$n" addr add "${NODE_IP[$n]}/24" dev eth0
        ip -n "$P-$n" route add default via 192.0.2.1
        ns "$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        NODE_MAC[$n]=$(ip -n "$P-$n" link show eth0 | awk '/ether/{print $2}')
    done
    ip -n "$P-cl2" addr add 192.0.2.50/24 dev eth0
    ns r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1

    FRR="$WORK/frr"; mkdir -p "$FRR/run"; : > "$FRR/vtysh.conf"
    printf 'hostname r\nlog file %s/zebra.log\n' "$FRR" > "$FRR/zebra.conf"
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
    local a=(-u frr -g frr --vty_socket "$FRR/run" -z "$FRR/run/zserv.api")
    ip netns exec "$P-r" /usr/lib/frr/zebra "${a[@]}" -f "$FRR/zebra.conf" -i "$FRR/run/zebra.pid" >"$FRR/zebra.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do [ -S "$FRR/run/zserv.api" ] && break; sleep 0.05; done
    [ -S "$FRR/run/zserv.api" ] || die "zebra did not start"
    ip netns exec "$P-r" /usr/lib/frr/bgpd "${a[@]}" -f "$FRR/bgpd.conf" -i "$FRR/run/bgpd.pid" >"$FRR/bgpd.out" 2>&1 &
    PIDS+=($!)

    M="$WORK/manifests"; mkdir -p "$M"
    cp "$ROOT/examples/lab/manifests/config.yaml" "$ROOT/examples/lab/manifests/nodes.yaml" "$M/"
    head -c 32 /dev/urandom > "$WORK/members.key"
    SEEDS=$(for n in "${NODES[@]}"; do printf '%s:7946,' "${NODE_IP[$n]}"; done); SEEDS=${SEEDS%,}
    ip netns exec "$P-ctl" "$BIN/ferrolb-controller" --manifests "$M" --metrics-addr 127.0.0.1:7472 >"$WORK/controller.log" 2>&1 &
    CTL_PID=$!; PIDS+=($!)
    for n in "${NODES[@]}"; do start_speaker "$n"; done
}

vty() { ip netns exec "$P-r" vtysh --config_dir "$FRR" --vty_socket "$FRR/run" -c "$1" 2>/dev/null; }

start_speaker() {
    local n=$1
    ip netns exec "$P-$n" "$BIN/ferrolb-speaker" --node "$n" --manifests "$M" \
        --members-bind "${NODE_IP[$n]}:7946" --members-seeds "$SEEDS" \
        --members-key-file "$WORK/members.key" --metrics-addr "${NODE_IP[$n]}:7473" \
        >>"$WORK/speaker-$n.log" 2>&1 &
    SPEAKER_PID[$n]=$!; PIDS+=($!)
}

# metric NODE NAME -> value of the first sample of NAME on that node's speaker (empty if down).
metric() {
    ns "$1" curl -s --max-time 0.5 "http://${NODE_IP[$1]}:7473/metrics" 2>/dev/null |
        awk -v m="$2" '$1==m || index($1, m"{")==1 {print $2; exit}'
}

# True when every speaker sees 3 members.
members_converged() {
    local n
    for n in "${NODES[@]}"; do [ "$(metric "$n" ferrolb_speaker_members)" = 3 ] || return 1; done
}

# The node(s) whose speaker owns an L2 IP now (space separated).
l2_owner() {
    local n out=""
    for n in "${NODES[@]}"; do
        v=$(metric "$n" ferrolb_speaker_l2_owned_ips)
        [ -n "$v" ] && [ "$v" != 0 ] && out="$out $n"
    done
    echo "${out# }"
}

# status_ip SERVICE -> first ingress IP in the controller's status file.
status_ip() {
    awk -v svc="$1" '
        $1=="name:" && $2==svc {found=1}
        found && $1=="-" && $2=="ip:" {print $3; exit}
        found && $1=="ip:" {print $2; exit}' "$M/.ferrolb/status.yaml" 2>/dev/null | tr -d '"' || true
}
