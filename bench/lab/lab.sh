# Sourced helper for the lab benchmarks: the lab of tests/src/lab.rs, built and torn down by
# its `lab` binary (FRR router r on br0 192.0.2.1/24, nodes n1-n3 192.0.2.11-13 each running
# ferrolb-speaker, client cl2 192.0.2.50 on the segment, the controller in ctl; IPv4 only),
# with the manifests config.yaml and nodes.yaml of examples/lab. Namespaces are
# "$P-<role>", P unique per run (default flbbench<PID>), so benchmarks can run side by side.
#
#   source bench/lab/lab.sh; lab_setup; ...; (cleanup runs on EXIT)
#
# Needs: ROOT (repository root). Sets (from WORK/lab.env, see `lab up`): P, WORK, M (manifests
# dir), BIN, FRR, CTL_PID, SPEAKER_PID; and NODES, NODE_IP, NODE_MAC, PIDS (the script's own
# background processes, stopped first on exit); functions ns, vty, start_speaker, metric,
# members_converged, l2_owner, status_ip, die, svc_doc. Logs: WORK/controller.log, WORK/n1.log, ...
# shellcheck source=../stop.sh
source "$ROOT/bench/stop.sh"
P=${P:-flbbench$$}
NODES=(n1 n2 n3)
declare -A NODE_IP=([n1]=192.0.2.11 [n2]=192.0.2.12 [n3]=192.0.2.13)
declare -A NODE_MAC SPEAKER_PID
PIDS=()
BIN=${BIN:-$ROOT/target/release}
LAB=${LAB:-$BIN/lab}

# Not for background jobs: `ns ... &` forks a subshell whose pid is not the program's.
ns()  { ip netns exec "$P-$1" "${@:2}"; }
die() { echo "FAILED: $*" >&2; exit 1; }

lab_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pids "${PIDS[@]}"
    if [ -n "${WORK:-}" ] && [ -f "$WORK/lab.env" ]; then
        if [ $rc = 0 ] && [ "${KEEP_LOGS:-0}" = 0 ]; then
            "$LAB" down --work "$WORK"
        else
            "$LAB" down --work "$WORK" --keep-work; echo "logs kept in $WORK" >&2
        fi
    fi
    exit $rc
}

lab_setup() {
    [ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
    [ -x "$BIN/ferrolb-speaker" ] && [ -x "$BIN/ferrolb-controller" ] && [ -x "$LAB" ] ||
        die "build first: cargo build --release -p ferrolb-controller -p ferrolb-speaker -p ferrolb-tests --bins"
    WORK=$(mktemp -d /tmp/ferrolb-bench-lab.XXXXXX)
    trap lab_cleanup EXIT INT TERM
    local m=$ROOT/examples/lab/manifests
    "$LAB" up --work "$WORK" --prefix "$P" --bin "$BIN" --no-ipv6 "$m/config.yaml" "$m/nodes.yaml" >&2 ||
        die "lab up failed"
    # shellcheck source=/dev/null
    source "$WORK/lab.env"
    PIDS+=("${SPEAKER_PID[@]}" "$CTL_PID")
    for n in "${NODES[@]}"; do
        NODE_MAC[$n]=$(ip -n "$P-$n" link show eth0 | awk '/ether/{print $2}')
    done
}

vty() { ip netns exec "$P-r" vtysh --config_dir "$FRR" --vty_socket "$FRR/run" -c "$1" 2>/dev/null; }

# start_speaker NODE: starts NODE's speaker again (after the script stopped it).
start_speaker() {
    SPEAKER_PID[$1]=$("$LAB" speaker --work "$WORK" "$1")
    PIDS+=("${SPEAKER_PID[$1]}")
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

# A LoadBalancer Service (port 8080) in pool POOL with its EndpointSlice: ready endpoints on
# all three nodes. EXTRA_ANNOTATION is one more "key: value" of the Service.
svc_doc() { # NAME POOL [EXTRA_ANNOTATION] -> a Service and its EndpointSlice
    cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default, annotations: {ferrolb.io/address-pool: $2${3:+, $3}}}
spec: {type: LoadBalancer, ports: [{name: http, protocol: TCP, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $1-a, namespace: default, labels: {kubernetes.io/service-name: $1}}
addressType: IPv4
endpoints:
  - {addresses: [192.0.2.11], nodeName: n1, conditions: {ready: true}}
  - {addresses: [192.0.2.12], nodeName: n2, conditions: {ready: true}}
  - {addresses: [192.0.2.13], nodeName: n3, conditions: {ready: true}}
EOF
}
