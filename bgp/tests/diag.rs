//! Session errors in words (what `lastError` says) and the log rate limit.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrolb_bgp::diag::*;
use ferrolb_bgp::machine::{ConnectError, DownReason};
use ferrolb_bgp::packet::{CeaseSubcode, Notification};

#[test]
fn no_answer_with_md5_names_the_password() {
    let r = DownReason::ConnectFailed(ConnectError::NoAnswer);
    let e = describe(&r, true).unwrap();
    assert_eq!(e.kind, ErrorKind::NoAnswer);
    assert_eq!(
        e.message,
        "no answer from peer; with TCP MD5 a password mismatch looks exactly like this"
    );
    let e = describe(&r, false).unwrap();
    assert!(!e.message.contains("MD5"), "{}", e.message);
    let e = describe(&DownReason::ConnectFailed(ConnectError::Refused), true).unwrap();
    assert_eq!(e.kind.as_str(), "refused");
    assert!(e.message.contains("refused"), "{}", e.message);
}

#[test]
fn notifications_are_decoded_to_words() {
    let mut n = Notification::new(2, 2);
    n.data = Bytes::from_static(&[0xfd, 0xe9]);
    let e = describe(&DownReason::PeerNotification(n.clone()), false).unwrap();
    assert_eq!(e.kind, ErrorKind::OpenRejected);
    assert_eq!(
        e.message,
        "peer rejected our OPEN: NOTIFICATION 2/2 (OPEN Message Error: Bad Peer AS)"
    );
    let e = describe(&DownReason::SentNotification(n), false).unwrap();
    assert_eq!(e.kind, ErrorKind::BadPeerOpen);
    assert!(
        e.message.ends_with("(it announced AS 65001)"),
        "{}",
        e.message
    );
    let cease = Notification::cease(CeaseSubcode::AdminShutdown, "maintenance");
    let e = describe(&DownReason::PeerNotification(cease), false).unwrap();
    assert_eq!(
        e.message,
        "peer sent NOTIFICATION 6/2 (Cease: Administrative Shutdown) \"maintenance\""
    );
    let e = describe(
        &DownReason::SentNotification(Notification::new(4, 0)),
        false,
    )
    .unwrap();
    assert_eq!(e.kind, ErrorKind::HoldTimerExpired);
    assert_eq!(
        e.message,
        "we sent NOTIFICATION 4/0 (Hold Timer Expired): nothing heard from the peer for the hold time"
    );
    assert_eq!(
        Notification::new(9, 9).to_string(),
        "NOTIFICATION 9/9 (Unknown Error)"
    );
}

#[test]
fn our_own_administrative_ceases_are_not_errors() {
    for sub in [
        CeaseSubcode::OtherConfigChange,
        CeaseSubcode::PeerDeconfigured,
        CeaseSubcode::AdminShutdown,
    ] {
        let r = DownReason::SentNotification(Notification::cease(sub, ""));
        assert_eq!(describe(&r, false), None, "{sub:?}");
    }
    // A reset we sent because BFD went down is.
    let r = DownReason::SentNotification(Notification::cease(
        CeaseSubcode::AdminReset,
        "BFD session down",
    ));
    assert_eq!(
        describe(&r, false).unwrap().kind,
        ErrorKind::NotificationSent
    );
    assert_eq!(describe(&DownReason::Stopped, false), None);
}

#[test]
fn log_limiter_logs_changes_at_once_and_repeats_once_per_interval() {
    let mut l = LogLimiter::new(Duration::from_secs(60));
    let t0 = Instant::now();
    let a = describe(&DownReason::ConnectFailed(ConnectError::NoAnswer), true).unwrap();
    let b = describe(&DownReason::ConnectFailed(ConnectError::Refused), true).unwrap();
    assert_eq!(l.check(&a, t0), Some(0));
    for i in 1..=20 {
        assert_eq!(l.check(&a, t0 + Duration::from_secs(i * 2)), None);
    }
    assert_eq!(l.check(&a, t0 + Duration::from_secs(60)), Some(20));
    // A different error is logged at once.
    assert_eq!(l.check(&b, t0 + Duration::from_secs(61)), Some(0));
    assert_eq!(l.check(&a, t0 + Duration::from_secs(62)), Some(0));
}
