//! Helpers shared by the byte-vector tests (`packet_vectors`, `extended_next_hop`).
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use ferrolb_bgp::packet::{Cxt, MAX_LEN, Message, frame_len};

/// Bytes from hex text (whitespace ignored).
pub fn hex(s: &str) -> Bytes {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>(),
    )
}

/// The BGP marker, 16 octets of ones.
pub const MARKER: &str = "ffffffffffffffffffffffffffffffff";

/// Four-octet ASNs, the standard 4096-octet messages.
pub fn cxt() -> Cxt {
    Cxt {
        four_byte_asn: true,
        max_len: MAX_LEN,
    }
}

/// Decodes `body` (everything after the marker) and checks it against `want`, then encodes
/// `want` and checks the bytes.
pub fn both_ways(body: &str, want: Message) {
    let bytes = hex(&format!("{MARKER}{body}"));
    assert_eq!(frame_len(&bytes, &cxt()), Ok(Some(bytes.len())));
    let got = Message::decode(&mut bytes.clone(), &cxt()).expect("decode");
    assert_eq!(got, want);
    let mut out = BytesMut::new();
    want.encode(&mut out, &cxt());
    assert_eq!(out.freeze(), bytes, "encode differs");
}
