//! Fuzzes whole-stream framing the way the session reader uses it: split a byte stream into
//! frames with `frame_len`, decode each, stop at the first error. Must never panic or loop.
#![no_main]

use bytes::BytesMut;
use ferrolb_bgp::packet::{Cxt, Message, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cxt = Cxt {
        four_byte_asn: true,
        max_len: 65535,
    };
    let mut buf = BytesMut::from(data);
    for _ in 0..data.len() + 1 {
        match frame_len(&buf, &cxt) {
            Ok(Some(n)) => {
                assert!(n >= 19 && n <= buf.len());
                let frame = buf.split_to(n).freeze();
                if Message::decode(&mut frame.clone(), &cxt).is_err() {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
});
