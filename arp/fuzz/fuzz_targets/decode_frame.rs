//! Arbitrary bytes through the frame decoder, the Router Advertisement decoder (unnumbered BGP
//! neighbour discovery) and the responder: must never panic, and any reply we would send must
//! decode again.
#![no_main]

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_arp::packet::Frame;
use ferrolb_arp::{MacAddr, Responder, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Frame::decode(data);
    let _ = ferrolb_arp::packet::router_advert_source(data);
    let mut r = Responder::new(MacAddr([2, 0, 0, 0, 0x0a, 1]));
    let owned: BTreeSet<IpAddr> = ["192.0.2.10", "2001:db8::10", "2001:db8::2"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    r.set_owned(&owned);
    if let Verdict::Reply { frame, .. } = r.handle(data) {
        Frame::decode(&frame).expect("our own reply decodes");
    }
});
