//! Arbitrary byte streams decoded as packets and interleaved with timer expiries and admin
//! commands, and (with echo mode on) echo timer expiries, returned echoes and forwarding
//! reports: the state machine must never panic, and its invariants must hold.
#![no_main]

use ferrolb_bfd::BfdProfile;
use ferrolb_bfd::echo::EchoPacket;
use ferrolb_bfd::packet::{ControlPacket, DecodeCxt, State};
use ferrolb_bfd::session::{Input, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte's low bit turns echo mode on.
    let profile = BfdProfile {
        echo_mode: data.first().is_some_and(|b| b & 1 == 1),
        ..BfdProfile::default()
    };
    let mut s = Session::new(profile, 0x1234_5678, 1);
    s.process(Input::Start);
    for chunk in data.chunks(25) {
        let byte = |i: usize| chunk.get(i).copied().unwrap_or(0);
        let input = match chunk[0] % 10 {
            0 => Input::TxTimerExpired,
            1 => Input::DetectTimerExpired,
            2 => Input::AdminDown,
            3 => Input::AdminUp,
            4 => Input::EchoTxTimerExpired,
            5 => Input::EchoDetectTimerExpired,
            6 => Input::SetEchoLoop(byte(1) & 1 == 1),
            7 => Input::EchoReturned(EchoPacket {
                my_discr: 0x1234_5678,
                seq: u64::from(byte(1)),
            }),
            _ => match ControlPacket::decode(&chunk[1..], &DecodeCxt::default()) {
                Ok(p) => Input::Received(p),
                Err(_) => continue,
            },
        };
        let out = s.process(input);
        let info = s.info();
        // Not Up: never advertise a TX interval below 1 s (RFC 5880 §6.8.3).
        if info.state != State::Up {
            assert!(info.desired_min_tx >= std::time::Duration::from_secs(1));
            assert!(!info.poll_active);
            // RFC 5880 §6.8.9: no echo unless Up.
            assert!(info.echo.tx_interval.is_none());
        }
        let echoes = out
            .iter()
            .any(|o| matches!(o, ferrolb_bfd::session::Output::SendEcho(_)));
        // Echoes only while our echo runs, never faster than the peer asked for.
        if echoes {
            let iv = info.echo.tx_interval.expect("echo sent while inactive");
            assert!(iv >= info.echo.remote_min_rx && !iv.is_zero());
        }
    }
});
