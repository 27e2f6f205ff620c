#!/bin/bash
# How the frames in this folder were captured (once, by hand, as root): two namespaces joined by
# a veth pair, the "server" side answered by the Linux kernel, the client being Habets arping 2.23,
# ndisc6 (Debian) or the client kernel itself; tcpdump -xx -e on the server side eth0.
# The VLAN frame comes from `arping -V 100` (the capture kernel had no 8021q module), with
# tcpdump reinserting the tag the kernel moved into packet metadata.
set -x
C=capc$$; S=caps$$
ip netns add $C; ip netns add $S
trap "ip netns del $C; ip netns del $S" EXIT
ip link add eth0 netns $C address 02:00:00:00:00:01 type veth peer name eth0 netns $S address 02:00:00:00:00:02
for n in $C $S; do ip -n $n link set lo up; ip netns exec $n sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0; ip -n $n link set eth0 up; done
ip -n $C addr add 192.0.2.1/24 dev eth0; ip -n $C addr add 2001:db8::1/64 dev eth0 nodad
ip -n $S addr add 192.0.2.10/24 dev eth0; ip -n $S addr add 2001:db8::10/64 dev eth0 nodad
ip -n $C link add link eth0 name eth0.100 type vlan id 100; ip -n $C link set eth0.100 up; ip -n $C addr add 198.51.100.1/24 dev eth0.100
ip -n $S link add link eth0 name eth0.100 type vlan id 100; ip -n $S link set eth0.100 up; ip -n $S addr add 198.51.100.10/24 dev eth0.100
sleep 2
cap() { name=$1; shift; ip netns exec $S timeout 4 tcpdump -i eth0 -xx -n -e -l -c ${N:-2} "${FILT:-arp or (icmp6 and ip6[40]>=135)}" > $name.txt 2>/dev/null & sleep 0.7; "$@"; wait; }
N=2 cap arping_req ip netns exec $C arping -c 1 -w 1 -i eth0 192.0.2.10
N=2 cap arping_probe0 ip netns exec $C arping -0 -c 1 -w 1 -i eth0 192.0.2.10
N=1 cap arping_garp_req ip netns exec $C arping -U -c 1 -w 1 -i eth0 -S 192.0.2.1 192.0.2.1
N=1 cap arping_garp_reply ip netns exec $C arping -U -P -c 1 -w 1 -i eth0 -S 192.0.2.1 192.0.2.1
ip -n $C neigh flush dev eth0; ip -n $S neigh flush dev eth0
N=2 FILT=arp cap kernel_arp ip netns exec $C ping -c 1 -W 1 192.0.2.10
N=2 FILT="vlan 100" cap vlan_arp ip netns exec $C ping -c 1 -W 1 198.51.100.10
N=2 FILT=icmp6 cap ndisc6_ns ip netns exec $C ndisc6 -1 -w 1000 2001:db8::10 eth0
ip -n $C neigh flush dev eth0; ip -n $S neigh flush dev eth0
N=2 FILT="icmp6 and ip6[40]>=135" cap kernel_ns_mcast ip netns exec $C ping -c 1 -W 1 2001:db8::10
ip -n $C neigh change 2001:db8::10 lladdr 02:00:00:00:00:02 dev eth0 nud stale
ip netns exec $C sysctl -qw net.ipv6.neigh.eth0.delay_first_probe_time=0
N=2 FILT="icmp6 and ip6[40]>=135" cap kernel_ns_unicast bash -c "ip netns exec $C ping -c 3 -i 0.3 -W 1 2001:db8::10; sleep 1"
ip netns exec $C sysctl -qw net.ipv6.conf.eth0.accept_dad=1
N=1 FILT="icmp6" cap kernel_dad_ns ip -n $C addr add 2001:db8::2/64 dev eth0
ip netns exec $C sysctl -qw net.ipv6.conf.eth0.ndisc_notify=1
# (kernel_unsol_na.txt comes from the first run of this script; later runs could catch a solicited NA
# first, so the filter below now also requires S=0.)
N=1 FILT="icmp6 and ip6[40]==136 and ip6[44]&0x40==0" cap kernel_unsol_na ip -n $C addr add 2001:db8::3/64 dev eth0 nodad

# VLAN capture (separate run):
# C=vc$$; S=vs$$
# ip netns add $C; ip netns add $S
# trap "ip netns del $C; ip netns del $S" EXIT
# ip link add eth0 netns $C address 02:00:00:00:00:01 type veth peer name eth0 netns $S address 02:00:00:00:00:02
# for n in $C $S; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip -n $n link set eth0 up; done
# ip -n $C addr add 192.0.2.1/24 dev eth0
# sleep 1
# ip netns exec $S timeout 4 tcpdump -i eth0 -xx -n -e -l -c 1 > vlan_arp.txt &
# sleep 0.7
# ip netns exec $C arping -V 100 -c 1 -w 1 -i eth0 192.0.2.11
# wait
