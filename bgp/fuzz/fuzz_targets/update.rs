//! Fuzzes the UPDATE decoder: arbitrary bytes behind a valid header of type 2, decoded
//! with both 2- and 4-octet AS contexts. Must never panic; a valid decode must re-encode.
#![no_main]

use bytes::{BufMut, BytesMut};
use ferrolb_bgp::packet::{Cxt, MAX_LEN, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_LEN - 19 {
        return;
    }
    let mut b = BytesMut::new();
    b.put_slice(&[0xff; 16]);
    b.put_u16((19 + data.len()) as u16);
    b.put_u8(2);
    b.put_slice(data);
    let frame = b.freeze();
    for four in [false, true] {
        let cxt = Cxt {
            four_byte_asn: four,
            max_len: MAX_LEN,
        };
        if let Ok(m) = Message::decode(&mut frame.clone(), &cxt) {
            let _ = m.to_bytes(&cxt);
        }
    }
});
