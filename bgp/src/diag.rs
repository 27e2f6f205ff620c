//! Why a session is not up, in words an operator can act on, and how loudly to say it (pure).
//!
//! [`describe`] turns what the FSM reports ([`DownReason`]) into a [`SessionError`]: a kind
//! (the `kind` label of the errors metric) and a message (the peer's `lastError`). Ends that
//! are not errors (our own Cease for a removed or reconfigured peer, a stop) give `None`.
//! [`LogLimiter`] keeps a peer that fails every few seconds from flooding the log.

use std::time::{Duration, Instant};

use crate::machine::{ConnectError, DownReason};
use crate::packet::{CeaseSubcode, Notification, error_code};

/// What kind of error ended a session or an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// A connection attempt got no answer (router down, filtered, or a TCP MD5 mismatch).
    NoAnswer,
    /// The peer refused the connection.
    Refused,
    /// No route to the peer, or another socket error.
    ConnectFailed,
    /// The peer rejected our OPEN (NOTIFICATION 2/x from the peer).
    OpenRejected,
    /// We rejected the peer's OPEN (NOTIFICATION 2/x from us: wrong AS, identifier...).
    BadPeerOpen,
    /// Any other NOTIFICATION the peer sent.
    NotificationReceived,
    /// Our hold timer expired: nothing heard from the peer for the hold time.
    HoldTimerExpired,
    /// Any other NOTIFICATION we sent (malformed message, FSM error, reset after BFD down).
    NotificationSent,
    /// The TCP connection closed or failed without a NOTIFICATION.
    ConnectionLost,
}

impl ErrorKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoAnswer => "no_answer",
            ErrorKind::Refused => "refused",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::OpenRejected => "open_rejected",
            ErrorKind::BadPeerOpen => "bad_peer_open",
            ErrorKind::NotificationReceived => "notification_received",
            ErrorKind::HoldTimerExpired => "hold_timer_expired",
            ErrorKind::NotificationSent => "notification_sent",
            ErrorKind::ConnectionLost => "connection_lost",
        }
    }
}

/// One error of a session, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The message for an attempt that got no answer when the session uses TCP MD5.
pub const NO_ANSWER_MD5: &str =
    "no answer from peer; with TCP MD5 a password mismatch looks exactly like this";

/// Describes why a session or an attempt ended; `md5`: the session uses a TCP MD5 password.
pub fn describe(reason: &DownReason, md5: bool) -> Option<SessionError> {
    let err = |kind, message: String| Some(SessionError { kind, message });
    match reason {
        DownReason::Stopped => None,
        DownReason::ConnectFailed(ConnectError::NoAnswer) if md5 => {
            err(ErrorKind::NoAnswer, NO_ANSWER_MD5.to_string())
        }
        DownReason::ConnectFailed(ConnectError::NoAnswer) => err(
            ErrorKind::NoAnswer,
            "no answer from peer (connection attempt timed out: router down or traffic filtered)"
                .into(),
        ),
        DownReason::ConnectFailed(ConnectError::Refused) => err(
            ErrorKind::Refused,
            "connection refused by peer (nothing listens on its BGP port for this address)".into(),
        ),
        DownReason::ConnectFailed(e) => {
            err(ErrorKind::ConnectFailed, format!("connect failed: {e}"))
        }
        DownReason::ConnectionLost => err(
            ErrorKind::ConnectionLost,
            "connection closed without a NOTIFICATION".into(),
        ),
        DownReason::PeerNotification(n) if n.code == error_code::OPEN => err(
            ErrorKind::OpenRejected,
            format!("peer rejected our OPEN: {n}"),
        ),
        DownReason::PeerNotification(n) => {
            err(ErrorKind::NotificationReceived, format!("peer sent {n}"))
        }
        DownReason::SentNotification(n) => sent(n),
        DownReason::BadPeerAs {
            notification,
            seen,
            peer_id,
            rule,
        } => err(
            ErrorKind::BadPeerOpen,
            format!(
                "we rejected the peer's OPEN: {notification}: peer {peer_id} announced AS {seen}, \
                 not accepted by {rule}"
            ),
        ),
    }
}

fn sent(n: &Notification) -> Option<SessionError> {
    let err = |kind, message: String| Some(SessionError { kind, message });
    let by_config = [
        CeaseSubcode::AdminShutdown,
        CeaseSubcode::PeerDeconfigured,
        CeaseSubcode::OtherConfigChange,
        CeaseSubcode::CollisionResolution,
    ];
    match n.code {
        // Our own Cease for a removed, stopped or reconfigured peer: not an error.
        error_code::CEASE if by_config.iter().any(|c| *c as u8 == n.subcode) => None,
        error_code::HOLD_TIMER_EXPIRED => err(
            ErrorKind::HoldTimerExpired,
            format!("we sent {n}: nothing heard from the peer for the hold time"),
        ),
        error_code::OPEN => {
            let mut m = format!("we rejected the peer's OPEN: {n}");
            let asn = match (n.subcode, &n.data[..]) {
                (2, [a, b]) => Some(u32::from(u16::from_be_bytes([*a, *b]))),
                (2, [a, b, c, d]) => Some(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => None,
            };
            if let Some(asn) = asn {
                m.push_str(&format!(" (it announced AS {asn})"));
            }
            err(ErrorKind::BadPeerOpen, m)
        }
        _ => err(ErrorKind::NotificationSent, format!("we sent {n}")),
    }
}

/// How often the same error is logged again while it repeats.
pub const LOG_REPEAT: Duration = Duration::from_secs(60);

/// Logs an error when it differs from the last one logged, or again after `interval` while
/// it repeats; counts what was held back in between.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    interval: Duration,
    last: Option<(ErrorKind, String, Instant)>,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        LogLimiter {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log this one, saying `n` repeats were held back since the last line;
    /// `None`: hold it back.
    pub fn check(&mut self, e: &SessionError, now: Instant) -> Option<u64> {
        let log = match &self.last {
            Some((kind, msg, at)) => {
                *kind != e.kind || *msg != e.message || now.duration_since(*at) >= self.interval
            }
            None => true,
        };
        if !log {
            self.suppressed += 1;
            return None;
        }
        self.last = Some((e.kind, e.message.clone(), now));
        Some(std::mem::take(&mut self.suppressed))
    }
}
