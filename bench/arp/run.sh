#!/usr/bin/env bash
# ARP responder benchmark (as root). In one run, on one veth pair between two namespaces:
#   1. in-process throughput of Responder::handle (no sockets; upper bound for one core);
#   2. ARP (and NS/NA) reply latency p50/p99, our responder vs the Linux kernel answering for an address
#      configured on the same interface, requests interleaved A B A B by one tool (arpbench):
#      a) responder and client on different CPUs, b) on the same CPU, c) with RT=1, a) again
#      with both at SCHED_FIFO;
#   3. socket blast: replies/s with WINDOW requests outstanding, ours vs the kernel.
# Our responder runs pinned to one CPU (taskset -c 1 when there are >= 2), the client on
# the other, with its per-source limit off (L2RESPOND_NO_LIMIT=1): this measures the answer
# path, and one client sending thousands of requests/s is exactly what the limit stops
# (bench/arp/flood.sh measures the limit). Prints result lines; BENCHMARKS.md records them with this command line.
#
#   sudo bash bench/arp/run.sh [LATENCY_COUNT=2000] [BLAST_SECONDS=3] [WINDOW=512]
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-2000}
SECS=${2:-3}
WINDOW=${3:-512}

cargo build --release -q -p ferrolb-arp --examples
BIN=target/release/examples

N=flb-bench-n-$$
C=flb-bench-c-$$
RESP_PID=
cleanup() {
    [ -n "$RESP_PID" ] && kill "$RESP_PID" 2>/dev/null || true
    ip netns del "$N" 2>/dev/null || true
    ip netns del "$C" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$N"
ip netns add "$C"
ip link add eth0 netns "$N" address 02:00:00:00:0a:01 type veth peer name eth0 netns "$C" address 02:00:00:00:0c:01
for ns in "$N" "$C"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
done
ip -n "$N" addr add 192.0.2.10/24 dev eth0   # the kernel answers for these two
ip -n "$N" addr add 2001:db8::10/64 dev eth0 nodad
ip -n "$C" addr add 192.0.2.1/24 dev eth0
ip -n "$C" addr add 2001:db8::1/64 dev eth0 nodad

PIN_RESP=() PIN_CLIENT=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_RESP=(taskset -c 1) PIN_CLIENT=(taskset -c 0)
fi

echo "== machine: $(nproc) cores, $(uname -r), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. in-process Responder::handle (no sockets)"
"${PIN_RESP[@]}" $BIN/handle_throughput 2

ip netns exec "$N" env L2RESPOND_NO_LIMIT=1 "${PIN_RESP[@]}" $BIN/l2respond eth0 192.0.2.11 2001:db8::11 > /tmp/l2respond.$$.out 2>/dev/null &
RESP_PID=$!
# Wait (bounded) until our responder answers.
for _ in $(seq 1 50); do
    if ip netns exec "$C" arping -q -c 1 -w 1 -I eth0 192.0.2.11 >/dev/null 2>&1; then break; fi
    sleep 0.1
done

LAT=(ip netns exec "$C" "${PIN_CLIENT[@]}" $BIN/arpbench latency eth0 192.0.2.1 "$COUNT" 192.0.2.10 192.0.2.11)
LAT6=(ip netns exec "$C" "${PIN_CLIENT[@]}" $BIN/arpbench latency eth0 2001:db8::1 "$COUNT" 2001:db8::10 2001:db8::11)
echo "== 2a. latency, responder and client on different CPUs, $COUNT requests per target,"
echo "==     interleaved (x::10 = kernel, x::11 = ferrolb); ARP, then NS/NA"
"${LAT[@]}"
"${LAT6[@]}"
if [ ${#PIN_RESP[@]} -gt 0 ]; then
    echo "== 2b. latency, responder moved to the client's CPU (taskset -a -p -c 0); ARP, then NS/NA"
    taskset -a -p -c 0 "$RESP_PID" >/dev/null
    "${LAT[@]}"
    "${LAT6[@]}"
    taskset -a -p -c 1 "$RESP_PID" >/dev/null
fi
if [ "${RT:-0}" = 1 ] && command -v chrt >/dev/null; then
    echo "== 2c. latency, different CPUs, responder and client at SCHED_FIFO 10 (chrt): takes"
    echo "==     the machine's other jobs out of the picture"
    chrt -f -p 10 "$RESP_PID"
    ip netns exec "$C" "${PIN_CLIENT[@]}" chrt -f 10 $BIN/arpbench latency eth0 192.0.2.1 "$COUNT" 192.0.2.10 192.0.2.11
    chrt -o -p 0 "$RESP_PID"
fi

echo "== 3. socket blast, $SECS s, window $WINDOW"
cpu_ns() { cut -d' ' -f1 "/proc/$RESP_PID/schedstat"; }
before=$(cpu_ns)
out=$(ip netns exec "$C" "${PIN_CLIENT[@]}" $BIN/arpbench blast eth0 192.0.2.1 "$SECS" "$WINDOW" 192.0.2.11)
after=$(cpu_ns)
replies=$(sed -n 's/.* replies=\([0-9]*\) .*/\1/p' <<<"$out")
echo "$out responder_cpu_ms=$(( (after - before) / 1000000 )) replies_per_cpu_second=$(( replies * 1000000000 / (after - before + 1) ))"
ip netns exec "$C" "${PIN_CLIENT[@]}" $BIN/arpbench blast eth0 192.0.2.1 "$SECS" "$WINDOW" 192.0.2.10

kill -TERM "$RESP_PID"; wait "$RESP_PID" 2>/dev/null || true; RESP_PID=
echo "== responder counters: $(cat /tmp/l2respond.$$.out)"
rm -f /tmp/l2respond.$$.out
