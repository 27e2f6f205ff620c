//! The Control packet decoder must never panic; whatever it accepts must encode to bytes that
//! decode to the same value, and match the input except for the Length byte (a Length above
//! the sections present is accepted, RFC 5880 §6.8.6 only bounds it from below).
#![no_main]

use ferrolb_bfd::packet::{ControlPacket, DecodeCxt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for auth_in_use in [Some(false), Some(true), None] {
        let cxt = DecodeCxt { auth_in_use };
        if let Ok(p) = ControlPacket::decode(data, &cxt) {
            let enc = p.to_bytes();
            assert_eq!(ControlPacket::decode(&enc, &cxt).as_ref(), Ok(&p));
            assert_eq!(&enc[..3], &data[..3]);
            assert_eq!(&enc[4..], &data[4..enc.len()]);
        }
    }
});
