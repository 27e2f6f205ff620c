#!/bin/bash
# Neighbor Solicitations with IPv6 extension headers, built by the Linux kernel (as root): a
# python3 raw ICMPv6 socket in the client namespace with IPV6_HOPOPTS (a Hop-by-Hop header
# holding one PadN option) and, for the second capture, IPV6_DSTOPTS as well (the kernel
# chains Hop-by-Hop -> Destination Options -> ICMPv6 and computes the ICMPv6 checksum); the
# server side is the Linux kernel owning 2001:db8::10. tcpdump -xx -e on the server's eth0.
set -x
C=capc$$; S=caps$$
ip netns add $C; ip netns add $S
trap "ip netns del $C; ip netns del $S" EXIT
ip link add eth0 netns $C address 02:00:00:00:00:01 type veth peer name eth0 netns $S address 02:00:00:00:00:02
for n in $C $S; do ip -n $n link set lo up; ip netns exec $n sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.all.mldv2_unsolicited_report_interval=0; ip -n $n link set eth0 up; done
ip -n $C addr add 2001:db8::1/64 dev eth0 nodad
ip -n $S addr add 2001:db8::10/64 dev eth0 nodad
sleep 2
send_ns() { ip netns exec $C python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.bind(('2001:db8::1', 0))
pad = bytes([0, 0, 1, 4, 0, 0, 0, 0])      # next header, length 0, PadN(4)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, pad)
if sys.argv[1] == 'dst':
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, pad)
target = socket.inet_pton(socket.AF_INET6, '2001:db8::10')
body = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + target + bytes([1, 1, 2, 0, 0, 0, 0, 1])
s.sendto(body, ('ff02::1:ff00:10', 0, 0, socket.if_nametoindex('eth0')))
PY
}
cap() { name=$1; shift; ip netns exec $S timeout 4 tcpdump -i eth0 -xx -n -e -l -c 2 "icmp6 or (ip6 and ip6[6]==0)" > $name.txt 2>/dev/null & sleep 0.7; "$@"; wait; }
cap ns_hop_by_hop send_ns hbh
ip -n $C neigh flush dev eth0; ip -n $S neigh flush dev eth0
cap ns_hop_by_hop_dstopts send_ns dst
