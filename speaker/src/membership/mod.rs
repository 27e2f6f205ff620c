//! Speaker membership: which speakers are alive, learned without any Kubernetes API write.
//!
//! SWIM over UDP between speakers (the sans-IO `foca` crate drives the protocol), each
//! datagram authenticated with HMAC-SHA256 under a key shared through a Secret. Peers are
//! found from seeds (speaker Pod IPs in Kubernetes, a static list in standalone mode); the
//! result is a `watch` of live node names that the L2 owner election reads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrolb_speaker::membership::MembershipError> {
//! use ferrolb_speaker::membership::{Membership, MembershipConfig, Tuning};
//! let (handle, mut live) = Membership::start(MembershipConfig {
//!     node_name: "node-a".into(),
//!     bind: "192.0.2.1:7946".parse().unwrap(),
//!     advertise: None,
//!     seeds: vec!["192.0.2.2:7946".parse().unwrap()],
//!     key: b"key from the memberlist Secret, 16+ bytes".to_vec(),
//!     tuning: Tuning::default(),
//! })
//! .await?;
//! live.changed().await.ok();
//! println!("live: {:?}", *live.borrow());
//! handle.set_seeds(vec!["192.0.2.3:7946".parse().unwrap()]);
//! println!("{:?}", handle.metrics());
//! handle.leave().await?; // on SIGTERM, before withdrawing anything
//! # Ok(()) }
//! ```
//!
//! Timing (defaults, see [`Tuning`]): crashes are found by the ring monitor (`ring.rs`):
//! each member heartbeats every 50 ms to the 2 members after it on a ring; a monitor that
//! hears nothing for 160 ms probes it directly and through 3 relays, and declares it down
//! if nothing answers within 40 ms, sending the verdict straight to every member. SWIM is
//! the backstop: every member probes one peer every 500 ms (indirect pings through 3
//! others after 100 ms), a suspect that does not refute within 1 s is down, and news
//! spreads by piggybacking and by gossip to 3 peers every 200 ms. A graceful leave is sent
//! directly to every member, so it is seen after one network delay.

mod driver;
mod identity;
mod metrics;
mod ring;
mod swim;
mod wire;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use self::identity::NodeId;
pub use self::metrics::{Metrics, MetricsSnapshot};
pub use self::ring::WatchTimer;
pub use self::swim::{Core, CoreTimer, MAX_DATAGRAM, Output};
pub use self::wire::{Key, Kind, OpenError, Peer};

/// Errors of the membership module.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("membership key is {len} bytes: at least 16 are needed (the Secret's key)")]
    KeyTooShort { len: usize },
    #[error("membership node name {0:?} is empty or longer than 253 bytes")]
    BadNodeName(String),
    #[error(
        "membership advertise address {0} is unspecified: set advertise to an address peers reach"
    )]
    UnspecifiedAdvertise(SocketAddr),
    #[error("invalid membership tuning: {0}")]
    Tuning(&'static str),
    #[error("failed to bind membership UDP socket on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("membership task stopped before the leave was sent")]
    Stopped,
}

/// Protocol timers. The defaults aim at detecting a crashed speaker well under 1 s on a
/// LAN while riding out scheduling hiccups of a busy node (indirect probes, suspicion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// How often each member probes one peer (round robin). memberlist LAN: 1 s.
    pub probe_period: Duration,
    /// How long to wait for a direct ack before asking others to probe. memberlist: 500 ms.
    pub probe_rtt: Duration,
    /// How many peers probe indirectly. memberlist: 3.
    pub indirect_probes: usize,
    /// How long a suspect has to refute before it is declared down. memberlist: ≥ 4 s.
    pub suspect_to_down: Duration,
    /// Gossip to `gossip_fanout` random members this often. memberlist: 200 ms, 3.
    pub gossip_period: Duration,
    pub gossip_fanout: usize,
    /// Announce again to seeds that are not live members (and to down members) this often.
    pub reannounce_period: Duration,
    /// Forget a down identity after this long.
    pub remove_down_after: Duration,
    /// Copies of the leave notice sent directly to each member and seed on leave. 0 sends
    /// none: the leave then spreads only by SWIM gossip (memberlist's behaviour).
    pub leave_repeats: u8,
    /// Ring monitor (fast crash detection, see `ring.rs`): how many members watch each
    /// member through heartbeats. 0 turns it off (SWIM alone, as memberlist).
    pub ring_monitors: usize,
    /// Heartbeat to each monitor this often.
    pub heartbeat_period: Duration,
    /// A monitor that hears nothing for this long probes the member directly and through
    /// `indirect_probes` relays...
    pub heartbeat_timeout: Duration,
    /// ...and declares it down if neither a heartbeat nor an ack comes within this.
    pub confirm_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            // SWIM is the backstop (joins, dissemination, failures the ring misses): its
            // timers are relaxed; the ring monitor does the fast crash detection.
            probe_period: Duration::from_millis(500),
            probe_rtt: Duration::from_millis(100),
            indirect_probes: 3,
            suspect_to_down: Duration::from_secs(1),
            gossip_period: Duration::from_millis(200),
            gossip_fanout: 3,
            reannounce_period: Duration::from_secs(1),
            remove_down_after: Duration::from_secs(30),
            leave_repeats: 2,
            ring_monitors: 2,
            heartbeat_period: Duration::from_millis(50),
            heartbeat_timeout: Duration::from_millis(160),
            confirm_timeout: Duration::from_millis(40),
        }
    }
}

impl Tuning {
    /// The named profiles [`Tuning::named`] knows (the benchmarks' `--profile` values).
    pub const NAMES: [&'static str; 3] = ["fast", "swim-only", "memberlist-lan"];

    /// The profile called `name`: `fast` ([`Tuning::default`]), `swim-only`
    /// ([`Tuning::swim_only`]) or `memberlist-lan` ([`Tuning::memberlist_lan`]).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "fast" => Some(Tuning::default()),
            "swim-only" => Some(Tuning::swim_only()),
            "memberlist-lan" => Some(Tuning::memberlist_lan()),
            _ => None,
        }
    }

    /// SWIM alone with ferrolb's earlier defaults (probe 100 ms, indirect after 40 ms,
    /// suspicion 250 ms, gossip 3 / 100 ms), no ring monitor: the comparison point.
    pub fn swim_only() -> Self {
        Tuning {
            probe_period: Duration::from_millis(100),
            probe_rtt: Duration::from_millis(40),
            suspect_to_down: Duration::from_millis(250),
            gossip_period: Duration::from_millis(100),
            ring_monitors: 0,
            ..Tuning::default()
        }
    }

    /// hashicorp/memberlist `DefaultLANConfig` timers (probe 1 s, ack 500 ms, suspicion
    /// 4 s, gossip 200 ms) and a gossip-only leave, as MetalLB uses them: the baseline.
    pub fn memberlist_lan() -> Self {
        Tuning {
            probe_period: Duration::from_secs(1),
            probe_rtt: Duration::from_millis(500),
            indirect_probes: 3,
            suspect_to_down: Duration::from_secs(4),
            gossip_period: Duration::from_millis(200),
            gossip_fanout: 3,
            leave_repeats: 0,
            ring_monitors: 0,
            ..Tuning::default()
        }
    }
}

fn watch_tuning_ok(t: &Tuning) -> Result<(), MembershipError> {
    if t.ring_monitors > 0
        && (t.heartbeat_period.is_zero()
            || t.heartbeat_timeout <= t.heartbeat_period
            || t.confirm_timeout.is_zero())
    {
        return Err(MembershipError::Tuning(
            "heartbeat_period and confirm_timeout must be above zero and heartbeat_timeout above heartbeat_period",
        ));
    }
    Ok(())
}

/// What [`Membership::start`] needs.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// This node's name (the Kubernetes Node name); the live set holds these names.
    pub node_name: String,
    /// UDP address to bind.
    pub bind: SocketAddr,
    /// Address peers reach this member on; `None` means `bind` (which must then be a
    /// specific address, not 0.0.0.0 or ::).
    pub advertise: Option<SocketAddr>,
    /// Peers to announce to: speaker Pod IPs, or a static list. May include ourselves.
    pub seeds: Vec<SocketAddr>,
    /// Shared key for HMAC-SHA256 (from the Secret), at least 16 bytes.
    pub key: Vec<u8>,
    pub tuning: Tuning,
}

/// Starts membership tasks.
pub struct Membership;

enum Command {
    SetSeeds(Vec<SocketAddr>),
    Leave(oneshot::Sender<()>),
}

/// Controls a running membership task. Dropping it stops the task without a leave (as a
/// crash would): call [`MembershipHandle::leave`] on a clean shutdown.
pub struct MembershipHandle {
    cmds: mpsc::UnboundedSender<Command>,
    metrics: Arc<Metrics>,
    task: JoinHandle<()>,
    local: SocketAddr,
    identity: NodeId,
}

impl Membership {
    /// Validates `config`, binds the socket, announces to the seeds and runs the protocol on
    /// a tokio task. Returns the handle and a watch of live member names (this node
    /// included).
    pub async fn start(
        config: MembershipConfig,
    ) -> Result<(MembershipHandle, watch::Receiver<BTreeSet<String>>), MembershipError> {
        if config.key.len() < 16 {
            return Err(MembershipError::KeyTooShort {
                len: config.key.len(),
            });
        }
        if config.node_name.is_empty() || config.node_name.len() > 253 {
            return Err(MembershipError::BadNodeName(config.node_name));
        }
        swim::foca_config(&config.tuning)?;
        watch_tuning_ok(&config.tuning)?;
        let socket =
            UdpSocket::bind(config.bind)
                .await
                .map_err(|source| MembershipError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let local = socket
            .local_addr()
            .map_err(|source| MembershipError::Bind {
                addr: config.bind,
                source,
            })?;
        let advertise = config.advertise.unwrap_or(local);
        if advertise.ip().is_unspecified() {
            return Err(MembershipError::UnspecifiedAdvertise(advertise));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let identity = NodeId {
            name: config.node_name,
            addr: advertise,
            bump: u64::try_from(now.as_millis()).unwrap_or(u64::MAX).max(1),
        };
        let seed = now.as_nanos() as u64 ^ u64::from(std::process::id()) << 32;
        let metrics = Arc::new(Metrics::default());
        let core = Core::new(
            identity.clone(),
            &config.key,
            config.seeds,
            config.tuning,
            seed,
            metrics.clone(),
        )?;
        let (live_tx, live_rx) = watch::channel(core.live().clone());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(driver::run(core, socket, cmd_rx, live_tx));
        Ok((
            MembershipHandle {
                cmds: cmd_tx,
                metrics,
                task,
                local,
                identity,
            },
            live_rx,
        ))
    }
}

impl MembershipHandle {
    /// Replaces the seed list (for example when speaker Pods change) and announces to
    /// seeds that are not members yet.
    pub fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        let _ = self.cmds.send(Command::SetSeeds(seeds));
    }

    /// Leaves gracefully: every known member and seed gets a leave notice directly, then
    /// the task stops. Returns once the notices are handed to the socket.
    pub async fn leave(mut self) -> Result<(), MembershipError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Command::Leave(tx))
            .map_err(|_| MembershipError::Stopped)?;
        rx.await.map_err(|_| MembershipError::Stopped)?;
        let _ = (&mut self.task).await;
        Ok(())
    }

    /// Stops at once with no leave, as a crash would (for tests and benchmarks).
    pub fn abort(self) {
        self.task.abort();
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The bound UDP address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// This member's identity as peers see it.
    pub fn identity(&self) -> &NodeId {
        &self.identity
    }
}

impl Drop for MembershipHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
