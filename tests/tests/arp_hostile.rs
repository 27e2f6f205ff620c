//! The L2 responder against hostile or unusual senders on real AF_PACKET sockets: a flood from
//! one host, requests from invalid sender addresses, a Neighbor Solicitation behind IPv6
//! extension headers built by the client's kernel.

use std::time::Duration;

use ferrolb_arp::{Config, DropReason, Limits, ReplyKind};
use ferrolb_tests::l2_fixture::{CLIENT_MAC, L2Bench, arp_request, arping, send_frames};
use ferrolb_tests::{require_root, wait_until};

const WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

fn config(limits: Limits) -> Config {
    Config {
        announce_count: 0,
        link_poll_interval: Duration::from_millis(100),
        limits,
        ..Config::default()
    }
}

#[test]
fn arp_flood_from_one_host_is_limited_and_others_are_answered() {
    if !require_root("arp_flood_from_one_host_is_limited_and_others_are_answered") {
        return;
    }
    let bench = L2Bench::new();
    let limits = Limits {
        per_source_rate: 100.0,
        per_source_burst: 50.0,
        ..Limits::default()
    };
    let r = bench.start_responder(config(limits));
    r.set_owned("eth0", &["192.0.2.31"]);
    let (ok, out) = arping(
        &bench.client,
        &["-c", "1", "-w", "3", "-I", "eth0", "192.0.2.31"],
    );
    assert!(ok, "no reply before the flood: {out}");
    // Another "host" on the client's link (its own MAC) floods requests for our IP (20k/s for
    // 1 s) while the client resolves it.
    let flood = arp_request("02:00:00:00:0f:01", "192.0.2.66", "192.0.2.31");
    let ((sent, took), (ok, out)) = std::thread::scope(|s| {
        let flooder = s.spawn(|| send_frames(&bench.client, "eth0", vec![flood], 20_000, 20));
        let legit = arping(
            &bench.client,
            &[
                "-c",
                "5",
                "-W",
                "0.2",
                "-w",
                "5",
                "-I",
                "eth0",
                "192.0.2.31",
            ],
        );
        (flooder.join().expect("flooder"), legit)
    });
    assert!(
        ok && out.contains("5 packets received"),
        "legitimate requests not all answered under the flood: {out}"
    );
    // Let the responder drain what reached its socket (bounded).
    let mut c = r.counters();
    for _ in 0..25 {
        std::thread::sleep(Duration::from_millis(200));
        let now = r.counters();
        if now.frames_received == c.frames_received {
            break;
        }
        c = now;
    }
    // The flooder got its burst plus the refill over the flood, no more...
    let budget = 50 + (100.0 * (took.as_secs_f64() + 1.0)) as u64;
    let answered = c.replies[&ReplyKind::Arp];
    assert!(sent >= 18_000, "the flood did not go out: {sent}");
    assert!(c.drops[&DropReason::RateLimited] > 0, "{c:?}");
    assert!(answered <= budget + 6, "sent {sent} in {took:?}: {c:?}");
    // ...and once limited it was dropped by the socket's kernel filter: most of the flood
    // never reached the responder.
    assert!(
        c.frames_received < sent as u64 / 2,
        "sent {sent} in {took:?}, the responder read {}: {c:?}",
        c.frames_received
    );
}

#[test]
fn arp_invalid_senders_are_ignored_and_ns_behind_extension_headers_answered() {
    if !require_root("arp_invalid_senders_are_ignored_and_ns_behind_extension_headers_answered") {
        return;
    }
    let bench = L2Bench::new();
    let r = bench.start_responder(config(Limits::default()));
    r.set_owned("eth0", &["192.0.2.32", "2001:db8::32"]);
    // A probe (sender 0.0.0.0) is answered (and proves the responder is serving).
    let (ok, out) = arping(
        &bench.client,
        &["-0", "-c", "1", "-w", "3", "-I", "eth0", "192.0.2.32"],
    );
    assert!(ok, "probe not answered: {out}");

    let frames = ["255.255.255.255", "224.0.0.251", "0.0.0.1"]
        .iter()
        .map(|spa| arp_request(CLIENT_MAC, spa, "192.0.2.32"))
        .collect();
    send_frames(&bench.client, "eth0", frames, 1, 10);
    let c = wait_until(WAIT, POLL, || {
        let c = r.counters();
        (c.drops[&DropReason::InvalidSender] >= 3).then_some(c)
    });
    assert!(c.is_some(), "{:?}", r.counters());
    assert_eq!(r.counters().replies[&ReplyKind::Arp], 0);
    // The client kernel builds an NS with a Hop-by-Hop and a Destination Options header
    // (raw ICMPv6 socket, IPV6_HOPOPTS / IPV6_DSTOPTS) and waits for the NA.
    let out = bench.client.exec_output(
        "python3",
        &["-c", NS_WITH_EXTENSION_HEADERS, "2001:db8::32"],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "no NA for an NS behind extension headers: {text}; {:?}",
        r.counters()
    );
    assert!(r.counters().replies[&ReplyKind::NaMulticastNs] >= 1);
}

/// Sends an NS for argv[1] to its solicited-node group with Hop-by-Hop and Destination
/// Options headers (PadN), then waits up to 3 s for an NA for it; exit status 0 if one came.
const NS_WITH_EXTENSION_HEADERS: &str = r#"
import socket, sys, time
target = socket.inet_pton(socket.AF_INET6, sys.argv[1])
group = 'ff02::1:ff%02x:%02x%02x' % (target[13], target[14], target[15])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
pad = bytes([0, 0, 1, 4, 0, 0, 0, 0])
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, pad)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, pad)
s.bind(('2001:db8::1', 0))
mac = bytes.fromhex(open('/sys/class/net/eth0/address').read().strip().replace(':', ''))
body = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + target + bytes([1, 1]) + mac
s.sendto(body, (group, 0, 0, socket.if_nametoindex('eth0')))
s.settimeout(0.2)
end = time.time() + 3
while time.time() < end:
    try:
        m = s.recv(2048)
    except socket.timeout:
        continue
    if m[0] == 136 and m[8:24] == target:
        print('NA for', sys.argv[1], 'flags', hex(m[4]))
        sys.exit(0)
sys.exit(1)
"#;
