//! What the speaker tells a peer task.

use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::packet::{DecodeError, Message, Notification};
use crate::peer_config::PeerConfig;

/// Commands from the speaker to a peer task.
#[derive(Debug)]
pub(crate) enum Command {
    Inbound(TcpStream),
    /// Collision candidate whose first message has been read.
    Collision(TcpStream, Result<Message, DecodeError>),
    Reset(Notification),
    /// Stop for good: optionally withdraw everything first, then send the Cease.
    Stop {
        notification: Notification,
        withdraw: bool,
        done: oneshot::Sender<()>,
    },
    /// New session settings (a configuration change): the FSM decides what to reset.
    Reconfigure {
        cfg: Box<PeerConfig>,
        fsm: Box<crate::machine::FsmConfig>,
    },
    /// Stop for good without a NOTIFICATION, so a graceful-restart helper keeps our routes.
    CloseForRestart {
        done: oneshot::Sender<()>,
    },
}
