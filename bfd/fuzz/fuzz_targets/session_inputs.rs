//! Arbitrary byte streams decoded as packets and interleaved with timer expiries and admin
//! commands: the state machine must never panic, and its invariants must hold.
#![no_main]

use ferrolb_bfd::BfdProfile;
use ferrolb_bfd::packet::{ControlPacket, DecodeCxt, State};
use ferrolb_bfd::session::{Input, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = Session::new(BfdProfile::default(), 0x1234_5678, 1);
    s.process(Input::Start);
    for chunk in data.chunks(25) {
        let input = match chunk[0] % 6 {
            0 => Input::TxTimerExpired,
            1 => Input::DetectTimerExpired,
            2 => Input::AdminDown,
            3 => Input::AdminUp,
            _ => match ControlPacket::decode(&chunk[1..], &DecodeCxt::default()) {
                Ok(p) => Input::Received(p),
                Err(_) => continue,
            },
        };
        s.process(input);
        let info = s.info();
        // Not Up: never advertise a TX interval below 1 s (RFC 5880 §6.8.3).
        if info.state != State::Up {
            assert!(info.desired_min_tx >= std::time::Duration::from_secs(1));
            assert!(!info.poll_active);
        }
    }
});
