//! The driver: one non-blocking AF_PACKET socket per interface that owns IPs, driven by a
//! tokio task through `AsyncFd` (no thread per interface); a manager task that polls the
//! interface list and reports link changes.
//!
//! It only moves frames and keeps time: every decision is the interface's
//! [`Machine`](crate::machine::Machine) (`handle(input, now) -> Vec<Output>`); the driver
//! feeds it frames in batches, then `Flush`, owned-set changes and timer ticks, and carries
//! out the outputs (send, join/leave groups, count, log, emit events).
//!
//! Choices:
//! - **Multicast**: for each owned IPv6 address the socket joins the solicited-node group's
//!   MAC with `PACKET_ADD_MEMBERSHIP` (refcounted, left when the last IP of that group goes).
//!   Unlike allmulti, the NIC filter stays tight and the membership disappears with the
//!   socket, so a crash leaves nothing behind.
//! - **Link state**: polled with `getifaddrs` (glibc does one NETLINK_ROUTE dump) every
//!   [`Config::link_poll_interval`] (default 500 ms), plus immediately after every
//!   `set_owned`. That keeps our own netlink parser (and its unsafe) out of the crate, sees
//!   renames and re-created interfaces (new ifindex) and costs one dump per interval; the
//!   price is up to one interval of delay, small next to the seconds a speaker needs to
//!   decide candidacy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, debug, info, info_span, warn};

mod iface;

use crate::Error;
use crate::counters::{AtomicCounters, Counters, bump};
use crate::limit::Limits;
use crate::link::{LinkInfo, poll_links};
use crate::machine::MachineConfig;
use crate::packet::MacAddr;
use iface::iface_task;

/// Settings of the L2 responder.
#[derive(Debug, Clone)]
pub struct Config {
    /// Announcements (gratuitous ARP pair / unsolicited NA) sent when an IP is gained or its
    /// link comes back up: the first at once, then `announce_count - 1` more.
    pub announce_count: u32,
    /// Spacing between announcements.
    pub announce_interval: Duration,
    /// How often the interface list and link states are polled.
    pub link_poll_interval: Duration,
    /// Capacity of the event channel; events that do not fit are counted and dropped.
    pub event_capacity: usize,
    /// A conflict (IP, other MAC) is logged and sent as an event at most once per interval;
    /// every conflicting frame is counted.
    pub conflict_interval: Duration,
    /// Flood protection: per-source token bucket and reply queue.
    pub limits: Limits,
}

impl Config {
    pub(crate) fn machine(&self) -> MachineConfig {
        MachineConfig {
            announce_count: self.announce_count,
            announce_interval: self.announce_interval,
            conflict_interval: self.conflict_interval,
            limits: self.limits,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            announce_count: 4,
            announce_interval: Duration::from_millis(300),
            link_poll_interval: Duration::from_millis(500),
            event_capacity: 1024,
            conflict_interval: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

/// What the responder tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L2Event {
    /// Another MAC claims an IP we own on `iface` (ARP with it as sender, or an NA for it).
    Conflict {
        ip: IpAddr,
        iface: String,
        other_mac: MacAddr,
    },
    /// An interface's link went up or down (up = IFF_UP and IFF_RUNNING).
    LinkChanged { iface: String, up: bool },
    /// A new interface was seen.
    InterfaceAppeared { iface: String, up: bool },
    /// An interface disappeared. Its owned set is kept; we answer again if it comes back.
    InterfaceGone { iface: String },
    /// The socket of an interface could not be opened or failed; `error` says why.
    SocketError { iface: String, error: String },
}

pub(crate) struct Shared {
    config: Config,
    stopped: std::sync::atomic::AtomicBool,
    owned: Mutex<HashMap<String, watch::Sender<BTreeSet<IpAddr>>>>,
    links: RwLock<BTreeMap<String, LinkInfo>>,
    counters: AtomicCounters,
    events: mpsc::Sender<L2Event>,
}

impl Shared {
    pub(crate) fn emit(&self, ev: L2Event) {
        if self.events.try_send(ev).is_err() {
            bump(&self.counters.events_dropped);
        }
    }
}

/// Entry point: `L2Responder::start(config)` inside a tokio runtime.
pub struct L2Responder;

impl L2Responder {
    /// Starts the manager task and returns the handle to drive it and the event stream.
    /// The responder runs until every clone of the handle is dropped.
    pub fn start(config: Config) -> Result<(L2Handle, mpsc::Receiver<L2Event>), Error> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
        let links = poll_links()?;
        let shared = Arc::new(Shared {
            config,
            stopped: std::sync::atomic::AtomicBool::new(false),
            owned: Mutex::new(HashMap::new()),
            links: RwLock::new(links),
            counters: AtomicCounters::default(),
            events: ev_tx,
        });
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        rt.spawn(manager(shared.clone(), wake_rx).instrument(info_span!("l2")));
        Ok((
            L2Handle {
                shared,
                wake: wake_tx,
            },
            ev_rx,
        ))
    }
}

/// The caller's side of a running responder. Cheap to clone.
#[derive(Clone)]
pub struct L2Handle {
    shared: Arc<Shared>,
    wake: mpsc::UnboundedSender<Cmd>,
}

enum Cmd {
    Wake,
    Shutdown,
}

impl L2Handle {
    /// Replaces the set of IPs answered on `interface`; an empty set stops answering there.
    /// Removed IPs stop being answered before the next frame is handled; gained IPs are
    /// announced. The interface need not exist yet: we start once it appears.
    pub fn set_owned(&self, interface: &str, ips: BTreeSet<IpAddr>) -> Result<(), Error> {
        if self.wake.is_closed() || self.shared.stopped.load(Ordering::SeqCst) {
            return Err(Error::Stopped);
        }
        {
            let mut owned = self.shared.owned.lock().unwrap_or_else(|e| e.into_inner());
            match owned.get(interface) {
                Some(tx) => {
                    tx.send_replace(ips);
                }
                None => {
                    owned.insert(interface.to_string(), watch::channel(ips).0);
                }
            }
        }
        self.wake.send(Cmd::Wake).map_err(|_| Error::Stopped)
    }

    /// Stops answering on every interface at once (before the next frame is handled) and
    /// stops the responder: sockets are closed, later `set_owned` calls fail with
    /// [`Error::Stopped`]. Nothing is sent. Dropping every handle has the same effect.
    pub fn shutdown(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let owned = self.shared.owned.lock().unwrap_or_else(|e| e.into_inner());
        for tx in owned.values() {
            tx.send_replace(BTreeSet::new());
        }
        let _ = self.wake.send(Cmd::Shutdown);
    }

    /// The IPs currently answered on `interface`.
    pub fn owned(&self, interface: &str) -> BTreeSet<IpAddr> {
        let owned = self.shared.owned.lock().unwrap_or_else(|e| e.into_inner());
        owned
            .get(interface)
            .map(|tx| tx.borrow().clone())
            .unwrap_or_default()
    }

    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Every interface as last polled: link state, MAC, addresses (to pick the interface
    /// whose subnet holds an IP).
    pub fn links(&self) -> BTreeMap<String, LinkInfo> {
        self.shared
            .links
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The interface whose configured subnet contains `ip`, preferring links that are up.
    pub fn interface_for(&self, ip: IpAddr) -> Option<String> {
        let links = self.links();
        let mut best: Option<(bool, u8, String)> = None;
        for (name, l) in &links {
            for net in &l.addresses {
                if net.contains(&ip) && l.mac.is_some() {
                    let key = (l.up, net.prefix_len(), name.clone());
                    if best.as_ref().is_none_or(|b| (key.0, key.1) > (b.0, b.1)) {
                        best = Some(key);
                    }
                }
            }
        }
        best.map(|b| b.2)
    }
}

/// How long a failed interface waits before its socket is opened again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

struct Running {
    ifindex: u32,
    mac: MacAddr,
    reannounce: Arc<Notify>,
    task: JoinHandle<()>,
}

async fn manager(shared: Arc<Shared>, mut wake: mpsc::UnboundedReceiver<Cmd>) {
    let mut tick = tokio::time::interval(shared.config.link_poll_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut backoff: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            w = wake.recv() => match w {
                None | Some(Cmd::Shutdown) => break,
                Some(Cmd::Wake) => {}
            },
            _ = tick.tick() => {}
        }
        let mut stop = false;
        while let Ok(c) = wake.try_recv() {
            stop |= matches!(c, Cmd::Shutdown);
        }
        if stop {
            break;
        }
        let new = match poll_links() {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "link poll failed");
                continue;
            }
        };
        let old = {
            let mut links = shared.links.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *links, new.clone())
        };
        for name in old.keys().filter(|n| !new.contains_key(*n)) {
            info!(iface = %name, "interface gone");
            shared.emit(L2Event::InterfaceGone {
                iface: name.clone(),
            });
        }
        for (name, l) in &new {
            match old.get(name) {
                None => {
                    info!(iface = %name, up = l.up, "interface appeared");
                    shared.emit(L2Event::InterfaceAppeared {
                        iface: name.clone(),
                        up: l.up,
                    });
                }
                Some(o) if o.up != l.up => {
                    info!(iface = %name, up = l.up, "link changed");
                    shared.emit(L2Event::LinkChanged {
                        iface: name.clone(),
                        up: l.up,
                    });
                    if l.up
                        && let Some(r) = running.get(name)
                    {
                        r.reannounce.notify_one();
                    }
                }
                Some(_) => {}
            }
        }
        reconcile(&shared, &new, &mut running, &mut backoff);
    }
    for (_, r) in running {
        r.task.abort();
    }
    debug!("L2 responder stopped");
}

/// Starts a socket task for every interface that owns IPs and exists with a MAC; stops tasks
/// whose interface is gone, changed (ifindex or MAC) or owns nothing any more. A task that
/// ended by itself (socket could not be opened, e.g. no CAP_NET_RAW) is retried after
/// [`RETRY_AFTER`], not at every poll, so its `SocketError` event is not repeated in a loop.
fn reconcile(
    shared: &Arc<Shared>,
    links: &BTreeMap<String, LinkInfo>,
    running: &mut HashMap<String, Running>,
    backoff: &mut HashMap<String, Instant>,
) {
    let now = Instant::now();
    backoff.retain(|_, until| *until > now);
    let owned: Vec<(String, watch::Receiver<BTreeSet<IpAddr>>)> = {
        let owned = shared.owned.lock().unwrap_or_else(|e| e.into_inner());
        owned
            .iter()
            .map(|(k, tx)| (k.clone(), tx.subscribe()))
            .collect()
    };
    let mut wanted: HashMap<String, (u32, MacAddr, watch::Receiver<BTreeSet<IpAddr>>)> =
        HashMap::new();
    for (name, rx) in owned {
        if rx.borrow().is_empty() {
            continue;
        }
        if let Some(l) = links.get(&name)
            && let Some(mac) = l.mac
        {
            wanted.insert(name, (l.ifindex, mac, rx));
        }
    }
    running.retain(|name, r| {
        if r.task.is_finished() {
            backoff.insert(name.clone(), now + RETRY_AFTER);
            return false;
        }
        let keep = wanted
            .get(name)
            .is_some_and(|(idx, mac, _)| *idx == r.ifindex && *mac == r.mac);
        if !keep {
            r.task.abort();
        }
        keep
    });
    for (name, (ifindex, mac, rx)) in wanted {
        if running.contains_key(&name) || backoff.contains_key(&name) {
            continue;
        }
        let reannounce = Arc::new(Notify::new());
        let span = info_span!("iface", name = %name, ifindex);
        let task = tokio::spawn(
            iface_task(
                shared.clone(),
                name.clone(),
                ifindex,
                mac,
                rx,
                reannounce.clone(),
            )
            .instrument(span),
        );
        running.insert(
            name,
            Running {
                ifindex,
                mac,
                reannounce,
                task,
            },
        );
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
