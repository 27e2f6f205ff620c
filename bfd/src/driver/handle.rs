//! [`BfdManager`]: the handle of the driver task (commands over a channel, counters,
//! subscribers), and the task's start.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

use super::counters::SharedCounters;
use super::socket::bind_receive;
use super::{BfdCounters, Driver, ManagerConfig, SessionStatus, Sockets};
use crate::BfdError;
use crate::machine::{BfdEvent, Families, Machine};
use crate::profile::BfdProfile;

pub(super) type Subscribers = Arc<Mutex<Vec<mpsc::UnboundedSender<BfdEvent>>>>;

pub(super) enum Command {
    Add {
        peer: IpAddr,
        local: IpAddr,
        ifname: Option<String>,
        multihop: bool,
        profile: BfdProfile,
        reply: oneshot::Sender<Result<(), BfdError>>,
    },
    Remove {
        peer: IpAddr,
        reply: oneshot::Sender<Result<(), BfdError>>,
    },
    SetProfile {
        peer: IpAddr,
        profile: BfdProfile,
        reply: oneshot::Sender<Result<(), BfdError>>,
    },
    Status {
        peer: Option<IpAddr>,
        reply: oneshot::Sender<Vec<SessionStatus>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Handle to the BFD driver task. Dropping it stops the task without AdminDown; call
/// [`BfdManager::shutdown`] for a clean stop.
pub struct BfdManager {
    cmd: mpsc::Sender<Command>,
    counters: Arc<SharedCounters>,
    subscribers: Subscribers,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl BfdManager {
    /// Binds the receive sockets and starts the driver task on the current tokio runtime.
    pub async fn start(config: ManagerConfig) -> Result<BfdManager, BfdError> {
        let sock4 = if config.ipv4 {
            Some(bind_receive(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                config.listen_port,
            ))?)
        } else {
            None
        };
        let sock6 = if config.ipv6 {
            match bind_receive(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                config.listen_port,
            )) {
                Ok(s) => Some(s),
                // A host booted with ipv6.disable=1: run IPv4-only rather than not at all.
                Err(BfdError::BindReceive { source, .. })
                    if source.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
                {
                    warn!("IPv6 unavailable on this host; BFD runs IPv4-only");
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let counters = Arc::new(SharedCounters::default());
        let subscribers: Subscribers = Arc::default();
        let families = Families {
            ipv4: sock4.is_some(),
            ipv6: sock6.is_some(),
        };
        let driver = Driver {
            machine: Machine::new(families, StdRng::from_rng(&mut rand::rng())),
            config,
            links: HashMap::new(),
            counters: counters.clone(),
            subscribers: subscribers.clone(),
            buf: BytesMut::with_capacity(64),
            echo: None,
            echo_loop: HashMap::new(),
        };
        let sockets = Sockets {
            single: [sock4, sock6],
            multi: [None, None],
        };
        let task = tokio::spawn(driver.run(cmd_rx, sockets));
        Ok(BfdManager {
            cmd: cmd_tx,
            counters,
            subscribers,
            task: Mutex::new(Some(task)),
        })
    }

    /// Starts a single-hop session to `peer`, sending from `local` (and bound to `ifname` when
    /// given, which IPv6 link-local peers need). Refused with [`BfdError::InvalidProfile`],
    /// [`BfdError::SessionExists`] or [`BfdError::BadSession`] as [`Machine::check_add`] says.
    pub async fn add_session(
        &self,
        peer: IpAddr,
        local: IpAddr,
        ifname: Option<String>,
        profile: BfdProfile,
    ) -> Result<(), BfdError> {
        self.add(peer, local, ifname, false, profile).await
    }

    /// Starts a multihop session (RFC 5883) to `peer`, sending from `local` to port 4784 with
    /// TTL 255 and accepting its packets on port 4784, addressed to `local`, with a TTL of at
    /// least `profile.minimum_ttl`. The first multihop session binds the 4784 receive socket
    /// of its family ([`BfdError::BindReceive`] when that fails).
    pub async fn add_multihop_session(
        &self,
        peer: IpAddr,
        local: IpAddr,
        profile: BfdProfile,
    ) -> Result<(), BfdError> {
        self.add(peer, local, None, true, profile).await
    }

    async fn add(
        &self,
        peer: IpAddr,
        local: IpAddr,
        ifname: Option<String>,
        multihop: bool,
        profile: BfdProfile,
    ) -> Result<(), BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Add {
            peer,
            local,
            ifname,
            multihop,
            profile,
            reply,
        })
        .await?;
        rx.await.map_err(|_| BfdError::Stopped)?
    }

    /// Sends AdminDown to `peer` and forgets the session.
    pub async fn remove_session(&self, peer: IpAddr) -> Result<(), BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Remove { peer, reply }).await?;
        rx.await.map_err(|_| BfdError::Stopped)?
    }

    /// Changes the timers of the session to `peer` in place. While Up, the change is
    /// announced with a Poll Sequence and takes force as RFC 5880 §6.8.3 says; the session
    /// does not flap.
    pub async fn set_profile(&self, peer: IpAddr, profile: BfdProfile) -> Result<(), BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetProfile {
            peer,
            profile,
            reply,
        })
        .await?;
        rx.await.map_err(|_| BfdError::Stopped)?
    }

    /// State of the session to `peer`.
    pub async fn session(&self, peer: IpAddr) -> Result<Option<SessionStatus>, BfdError> {
        Ok(self.status(Some(peer)).await?.into_iter().next())
    }

    /// State of every session.
    pub async fn sessions(&self) -> Result<Vec<SessionStatus>, BfdError> {
        self.status(None).await
    }

    async fn status(&self, peer: Option<IpAddr>) -> Result<Vec<SessionStatus>, BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status { peer, reply }).await?;
        rx.await.map_err(|_| BfdError::Stopped)
    }

    /// A stream of every state change from now on. Unbounded, so a slow reader never loses a
    /// Down; dropping the receiver unsubscribes.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<BfdEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Counters since start.
    pub fn counters(&self) -> BfdCounters {
        self.counters.snapshot()
    }

    /// Sends AdminDown on every session, then stops the driver. Call it before sending BGP
    /// CEASE so that peers do not read the shutdown as a failure (RFC 5882 §3.2).
    pub async fn shutdown(&self) -> Result<(), BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Shutdown { reply }).await?;
        rx.await.map_err(|_| BfdError::Stopped)?;
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        Ok(())
    }

    async fn send(&self, cmd: Command) -> Result<(), BfdError> {
        self.cmd.send(cmd).await.map_err(|_| BfdError::Stopped)
    }
}

impl Drop for BfdManager {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}
