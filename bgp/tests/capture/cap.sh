#!/bin/bash
# How the vectors in packet_vectors.rs were captured (run once as root, not part of the suite).
# Then: python3 split.py birdfrr.pcap gobgpbird.pcap
# Capture BGP messages from bird<->frr (iBGP) and gobgpd<->bird (eBGP) in namespaces.
set -x
D=/tmp/flbcap
for ns in flbcapA flbcapB flbcapC flbcapD; do ip netns del $ns 2>/dev/null; ip netns add $ns; ip -n $ns link set lo up; done
ip link add eth0 netns flbcapA type veth peer name eth0 netns flbcapB
ip link add eth0 netns flbcapC type veth peer name eth0 netns flbcapD
for ns in flbcapA flbcapB flbcapC flbcapD; do ip -n $ns link set eth0 up; done
ip -n flbcapA addr add 192.0.2.1/24 dev eth0; ip -n flbcapB addr add 192.0.2.2/24 dev eth0
ip -n flbcapC addr add 198.51.100.3/24 dev eth0; ip -n flbcapD addr add 198.51.100.4/24 dev eth0
ip -n flbcapC addr add 2001:db8:1::3/64 dev eth0 nodad
ip netns exec flbcapB tcpdump -i eth0 -s 0 -U -w $D/birdfrr.pcap tcp port 179 & T1=$!
ip netns exec flbcapD tcpdump -i eth0 -s 0 -U -w $D/gobgpbird.pcap tcp port 179 & T2=$!
sleep 1
cat > $D/birdA.conf <<B
log "$D/birdA.log" all;
router id 192.0.2.1;
protocol device {}
protocol static s4 { ipv4; route 203.0.113.10/32 blackhole { bgp_community.add((65000,100)); bgp_large_community.add((65000,1,2)); bgp_med = 50; bgp_local_pref = 200; }; route 203.0.113.11/32 blackhole; }
protocol static s6 { ipv6; route 2001:db8:10::1/128 blackhole { bgp_community.add((65000,101)); }; }
protocol bgp frr {
  local 192.0.2.1 as 65001; neighbor 192.0.2.2 as 65001;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  graceful restart on;
  ipv4 { import all; export all; };
  ipv6 { import all; export all; next hop address 2001:db8::1; };
}
B
ip netns exec flbcapA bird -f -c $D/birdA.conf -s $D/birdA.ctl & BA=$!
mkdir -p $D/frr/run; : > $D/frr/vtysh.conf; : > $D/frr/zebra.conf
cat > $D/frr/bgpd.conf <<F
router bgp 65001
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 192.0.2.1 remote-as 65001
 neighbor 192.0.2.1 timers connect 1
 address-family ipv4 unicast
  network 203.0.113.30/32
  neighbor 192.0.2.1 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 192.0.2.1 activate
 exit-address-family
F
chown -R frr:frr $D/frr
C="-u frr -g frr --vty_socket $D/frr/run -z $D/frr/run/zserv.api"
ip netns exec flbcapB /usr/lib/frr/zebra $C -f $D/frr/zebra.conf -i $D/frr/run/zebra.pid & Z=$!
for i in $(seq 50); do [ -S $D/frr/run/zserv.api ] && break; sleep 0.1; done
ip netns exec flbcapB /usr/lib/frr/bgpd $C -f $D/frr/bgpd.conf -i $D/frr/run/bgpd.pid & BG=$!
cat > $D/birdD.conf <<B
log "$D/birdD.log" all;
router id 198.51.100.4;
protocol device {}
protocol bgp gobgp {
  local 198.51.100.4 as 65020; neighbor 198.51.100.3 as 65010;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
B
ip netns exec flbcapD bird -f -c $D/birdD.conf -s $D/birdD.ctl & BD=$!
cat > $D/gobgp.toml <<G
[global.config]
  as = 65010
  router-id = "198.51.100.3"
  port = 179
  local-address-list = ["198.51.100.3"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.51.100.4"
    peer-as = 65020
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
G
ip netns exec flbcapC gobgpd -f $D/gobgp.toml --api-hosts 127.0.0.1:50071 & GB=$!
sleep 3
G="ip netns exec flbcapC gobgp -u 127.0.0.1 -p 50071"
$G global rib add 203.0.113.20/32 community 65000:200 large-community 65000:3:4 med 10
$G global rib add -a ipv6 2001:db8:20::1/128 nexthop 2001:db8:1::3
sleep 8
birdc -s $D/birdA.ctl show protocols all frr | head -40
birdc -s $D/birdD.ctl show route
birdc -s $D/birdA.ctl reload in frr
ip netns exec flbcapB vtysh --config_dir $D/frr --vty_socket $D/frr/run -c 'clear bgp 192.0.2.1 soft in'
sleep 1
$G global rib del 203.0.113.20/32
$G global rib del -a ipv6 2001:db8:20::1/128
birdc -s $D/birdA.ctl disable s4
birdc -s $D/birdA.ctl disable s6
sleep 2
birdc -s $D/birdA.ctl disable frr '"maintenance window"'
$G neighbor 198.51.100.4 shutdown -m "gobgp going down"
sleep 2
kill $T1 $T2 $BA $BD $GB $BG; sleep 0.5; kill $Z
sleep 1
for ns in flbcapA flbcapB flbcapC flbcapD; do ip netns del $ns; done
