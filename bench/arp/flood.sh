#!/usr/bin/env bash
# ARP under a flood (as root): legitimate replies' latency and loss while another host floods
# ARP requests, our responder and the Linux kernel side by side under the same flood.
#
# Four namespaces on one bridge: node N (eth0: the kernel owns 192.0.2.10, our responder
# 192.0.2.11), legitimate client C (192.0.2.1), flooder F (192.0.2.66), switch S (br0).
# F sends RATE requests/s for 192.0.2.10 and 192.0.2.11 in turn (A B A B ...), unicast to the
# node's MAC, for FLOOD_SECONDS; after 1 s C measures one request at a time, targets
# interleaved, COUNT per target (arpbench latency: p50/p99/max, lost = no reply in 200 ms),
# GAP_US (default 5000) between a reply and the next request: ~100 requests/s per target,
# far more than a host resolving an address needs, within the responder's per-source limit
# (200/s after a burst of 400).
# Three phases, each with the kernel in the same run: no flood (the machine's own noise), the
# flood with our limits (default), the flood with them off (L2RESPOND_NO_LIMIT=1, the
# responder as it was before the limit).
# Responder pinned to CPU 1, client to CPU 0, flooder not pinned. With RT=1 the responder and
# the client run at SCHED_FIFO 10 (chrt), which takes the machine's other jobs out of the
# picture.
#
#   sudo [RT=1] [GAP_US=5000] bash bench/arp/flood.sh [RATE=50000] [COUNT=1000] [FLOOD_SECONDS=14]
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${1:-50000}
COUNT=${2:-1000}
FSECS=${3:-14}
GAP_US=${GAP_US:-5000}

cargo build --release -q -p ferrolb-arp --examples
BIN=target/release/examples
N=flb-fl-n-$$ C=flb-fl-c-$$ F=flb-fl-f-$$ S=flb-fl-s-$$
NODE_MAC=02:00:00:00:0a:01
RESP_PID= FLOOD_PID=
cleanup() {
    [ -n "$FLOOD_PID" ] && kill "$FLOOD_PID" 2>/dev/null || true
    [ -n "$RESP_PID" ] && kill "$RESP_PID" 2>/dev/null || true
    for ns in "$N" "$C" "$F" "$S"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
for ns in "$N" "$C" "$F" "$S"; do ip netns add "$ns"; done
ip -n "$S" link add br0 type bridge
ip -n "$S" link set br0 up
i=0
for pair in "$N:$NODE_MAC" "$C:02:00:00:00:0c:01" "$F:02:00:00:00:0f:01"; do
    ns=${pair%%:*} mac=${pair#*:}
    ip link add eth0 netns "$ns" address "$mac" type veth peer name p$i netns "$S"
    ip -n "$S" link set p$i master br0
    ip -n "$S" link set p$i up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    i=$((i + 1))
done
ip -n "$N" addr add 192.0.2.10/24 dev eth0
ip -n "$C" addr add 192.0.2.1/24 dev eth0
ip -n "$F" addr add 192.0.2.66/24 dev eth0

PIN_RESP=() PIN_CLIENT=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_RESP=(taskset -c 1) PIN_CLIENT=(taskset -c 0)
fi
if [ "${RT:-0}" = 1 ] && command -v chrt >/dev/null; then
    PIN_RESP+=(chrt -f 10) PIN_CLIENT+=(chrt -f 10)
fi
echo "== machine: $(nproc) cores, $(uname -r), load: $(cut -d' ' -f1-3 /proc/loadavg), RT=${RT:-0}"
echo "== flood: $RATE requests/s from one host for ${FSECS}s (192.0.2.10 = kernel, .11 = ferrolb, in turn), $COUNT legitimate requests per target, ${GAP_US} us apart"

run_mode() { # $1 = label, $2 = L2RESPOND_NO_LIMIT value, $3 = flood rate
    ip netns exec "$N" env L2RESPOND_NO_LIMIT="$2" "${PIN_RESP[@]}" $BIN/l2respond eth0 192.0.2.11 \
        > /tmp/l2respond.$$.out 2>/dev/null &
    RESP_PID=$!
    for _ in $(seq 1 50); do
        if ip netns exec "$C" arping -q -c 1 -w 1 -I eth0 192.0.2.11 >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    ip netns exec "$F" $BIN/arpbench flood eth0 192.0.2.66 "$3" "$FSECS" "$NODE_MAC" 192.0.2.10 192.0.2.11 \
        > /tmp/arpflood.$$.out &
    FLOOD_PID=$!
    sleep 1
    echo "== $1: legitimate requests"
    ip netns exec "$C" env ARPBENCH_GAP_US="$GAP_US" "${PIN_CLIENT[@]}" $BIN/arpbench latency eth0 192.0.2.1 "$COUNT" 192.0.2.10 192.0.2.11
    wait "$FLOOD_PID"; FLOOD_PID=
    echo "== $1: $(cat /tmp/arpflood.$$.out)"
    kill -TERM "$RESP_PID"; wait "$RESP_PID" 2>/dev/null || true; RESP_PID=
    echo "== $1: responder counters: $(cat /tmp/l2respond.$$.out)"
}
run_mode "no flood" 0 0
run_mode "flood, ferrolb with per-source limit" 0 "$RATE"
run_mode "flood, ferrolb without limit (as before)" 1 "$RATE"
rm -f /tmp/l2respond.$$.out /tmp/arpflood.$$.out
