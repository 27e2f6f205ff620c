//! The Control packet decoder must never panic, and whatever it accepts must encode back to
//! the same bytes (up to the Length field).
#![no_main]

use ferrolb_bfd::packet::{ControlPacket, DecodeCxt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for auth_in_use in [false, true] {
        if let Ok(p) = ControlPacket::decode(data, &DecodeCxt { auth_in_use }) {
            let enc = p.to_bytes();
            assert_eq!(&enc[..], &data[..enc.len()]);
        }
    }
});
