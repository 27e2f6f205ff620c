//! The I/O side: one non-blocking AF_PACKET socket per interface that owns IPs, driven by a
//! tokio task through `AsyncFd` (no thread per interface); a manager task that polls the
//! interface list and reports link changes; announcements on gaining an IP.
//!
//! The loop only moves bytes: read a frame, `Responder::handle`, write the reply, count.
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
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::announce::AnnounceSchedule;
use crate::packet::{MacAddr, solicited_node_mac};
use crate::responder::{DropReason, ReplyKind, Responder, Verdict, announcements};
use crate::{Error, sys};

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            announce_count: 4,
            announce_interval: Duration::from_millis(300),
            link_poll_interval: Duration::from_millis(500),
            event_capacity: 1024,
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

/// One interface as last polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub up: bool,
    pub mac: Option<MacAddr>,
    pub addresses: Vec<IpNet>,
}

/// A snapshot of the counters, as plain numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames that passed the kernel filter and reached the responder.
    pub frames_received: u64,
    pub replies: BTreeMap<ReplyKind, u64>,
    pub drops: BTreeMap<DropReason, u64>,
    pub conflicts: u64,
    /// Announcement frames sent (each gratuitous ARP form and each unsolicited NA count 1).
    pub announcements_sent: u64,
    pub send_errors: u64,
    /// Frames the kernel dropped because a socket's receive buffer was full.
    pub kernel_drops: u64,
    pub events_dropped: u64,
}

impl Counters {
    pub fn replies_total(&self) -> u64 {
        self.replies.values().sum()
    }
}

#[derive(Default)]
struct AtomicCounters {
    frames_received: AtomicU64,
    replies: [AtomicU64; ReplyKind::ALL.len()],
    drops: [AtomicU64; DropReason::ALL.len()],
    conflicts: AtomicU64,
    announcements_sent: AtomicU64,
    send_errors: AtomicU64,
    kernel_drops: AtomicU64,
    events_dropped: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl AtomicCounters {
    fn reply(&self, k: ReplyKind) {
        let i = ReplyKind::ALL.iter().position(|x| *x == k).unwrap_or(0);
        bump(&self.replies[i]);
    }

    fn drop_reason(&self, r: DropReason) {
        let i = DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
        bump(&self.drops[i]);
    }

    fn snapshot(&self) -> Counters {
        let ld = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            frames_received: ld(&self.frames_received),
            replies: ReplyKind::ALL
                .iter()
                .zip(&self.replies)
                .map(|(k, c)| (*k, ld(c)))
                .collect(),
            drops: DropReason::ALL
                .iter()
                .zip(&self.drops)
                .map(|(k, c)| (*k, ld(c)))
                .collect(),
            conflicts: ld(&self.conflicts),
            announcements_sent: ld(&self.announcements_sent),
            send_errors: ld(&self.send_errors),
            kernel_drops: ld(&self.kernel_drops),
            events_dropped: ld(&self.events_dropped),
        }
    }
}

struct Shared {
    config: Config,
    stopped: std::sync::atomic::AtomicBool,
    owned: Mutex<HashMap<String, watch::Sender<BTreeSet<IpAddr>>>>,
    links: RwLock<BTreeMap<String, LinkInfo>>,
    counters: AtomicCounters,
    events: mpsc::Sender<L2Event>,
}

impl Shared {
    fn emit(&self, ev: L2Event) {
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

fn poll_links() -> Result<BTreeMap<String, LinkInfo>, Error> {
    let raw = sys::interfaces().map_err(Error::ListInterfaces)?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let info = LinkInfo {
                ifindex: r.ifindex,
                up: r.is_up(),
                mac: r.mac.map(MacAddr),
                addresses: r
                    .addrs
                    .iter()
                    .filter_map(|(ip, p)| IpNet::new(*ip, *p).ok())
                    .collect(),
            };
            (r.name, info)
        })
        .collect())
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

/// A non-blocking AF_PACKET socket bound to one interface, filtered in the kernel to ARP and
/// ICMPv6 NS/NA. Public so tools (the benchmark's request blaster) can use it too.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

/// Room for a VLAN tag to be put back in front of a received frame.
const TAG_ROOM: usize = 4;

impl PacketSocket {
    /// Opens the socket on the interface called `iface` in the current network namespace.
    pub fn open(iface: &str) -> Result<PacketSocket, Error> {
        let links = poll_links()?;
        let l = links.get(iface).ok_or_else(|| Error::NoSuchInterface {
            iface: iface.to_string(),
        })?;
        Self::open_index(iface, l.ifindex)
    }

    fn open_index(iface: &str, ifindex: u32) -> Result<PacketSocket, Error> {
        let fd = sys::open_packet_socket(ifindex).map_err(|source| Error::OpenSocket {
            iface: iface.to_string(),
            source,
        })?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// Registers the socket with the current tokio runtime for readability.
    pub fn into_async(self) -> std::io::Result<AsyncFd<PacketSocket>> {
        sys::register_async(self)
    }

    pub fn send(&self, frame: &[u8]) -> std::io::Result<usize> {
        sys::send_frame(&self.fd, frame)
    }

    /// Receives one frame without blocking. `buf` must have 4 spare bytes in front: the
    /// returned range is where the frame is, with any VLAN tag the kernel moved into packet
    /// metadata put back after the MAC addresses, so the frame reads as it was on the wire.
    pub fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<std::ops::Range<usize>> {
        if buf.len() <= TAG_ROOM + 14 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "receive buffer must hold 4 spare bytes and an Ethernet header",
            ));
        }
        let meta = sys::recv_frame(&self.fd, &mut buf[TAG_ROOM..])?;
        match meta.vlan {
            Some((tpid, tci)) if meta.len >= 12 => {
                buf.copy_within(TAG_ROOM..TAG_ROOM + 12, 0);
                buf[12..14].copy_from_slice(&tpid.to_be_bytes());
                buf[14..16].copy_from_slice(&tci.to_be_bytes());
                Ok(0..meta.len + TAG_ROOM)
            }
            _ => Ok(TAG_ROOM..TAG_ROOM + meta.len),
        }
    }

    /// Frames the kernel dropped for this socket since the last call.
    pub fn kernel_drops(&self) -> std::io::Result<u32> {
        sys::dropped_since_last(&self.fd)
    }

    fn membership(&self, mac: MacAddr, join: bool) -> std::io::Result<()> {
        sys::multicast_membership(&self.fd, self.ifindex, mac.0, join)
    }
}

impl std::os::fd::AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }
}

/// Per-interface state of the socket task.
struct IfaceState {
    iface: String,
    responder: Responder,
    owned: BTreeSet<IpAddr>,
    groups: BTreeMap<MacAddr, usize>,
    schedule: AnnounceSchedule,
    /// Last time each (ip, other MAC) conflict was reported, to report a flood once per
    /// [`CONFLICT_REPORT_EVERY`] (the counter still counts every frame).
    conflicts: HashMap<(IpAddr, MacAddr), std::time::Instant>,
}

const CONFLICT_REPORT_EVERY: Duration = Duration::from_secs(1);

impl IfaceState {
    /// Applies a new owned set: the responder first (stop answering at once), then multicast
    /// groups, then the announcement schedule.
    fn apply(&mut self, sock: &PacketSocket, new: BTreeSet<IpAddr>, shared: &Shared) {
        self.responder.set_owned(&new);
        let gained: Vec<IpAddr> = new.difference(&self.owned).copied().collect();
        let lost: Vec<IpAddr> = self.owned.difference(&new).copied().collect();
        for ip in &lost {
            if let IpAddr::V6(a) = ip {
                let g = solicited_node_mac(a);
                if let Some(n) = self.groups.get_mut(&g) {
                    *n -= 1;
                    if *n == 0 {
                        self.groups.remove(&g);
                        if let Err(e) = sock.membership(g, false) {
                            warn!(group = %g, error = %e, "failed to leave multicast group");
                        }
                    }
                }
            }
        }
        for ip in &gained {
            if let IpAddr::V6(a) = ip {
                let g = solicited_node_mac(a);
                let n = self.groups.entry(g).or_insert(0);
                if *n == 0
                    && let Err(e) = sock.membership(g, true)
                {
                    warn!(group = %g, error = %e, "failed to join multicast group");
                    shared.emit(L2Event::SocketError {
                        iface: self.iface.clone(),
                        error: format!("failed to join multicast group {g}: {e}"),
                    });
                }
                *n += 1;
            }
        }
        self.schedule.retain_owned(&new);
        self.owned = new;
        if !gained.is_empty() || !lost.is_empty() {
            info!(?gained, ?lost, "owned IPs changed");
        }
        self.announce(&gained);
    }

    fn announce(&mut self, ips: &[IpAddr]) {
        let now = std::time::Instant::now();
        for ip in ips {
            self.schedule.start(*ip, now);
        }
    }

    fn send_due(&mut self, sock: &PacketSocket, shared: &Shared) {
        let mac = self.responder.mac();
        for ip in self.schedule.take_due(std::time::Instant::now()) {
            for frame in announcements(mac, ip) {
                match sock.send(&frame) {
                    Ok(_) => bump(&shared.counters.announcements_sent),
                    Err(e) => {
                        bump(&shared.counters.send_errors);
                        debug!(%ip, error = %e, "announcement not sent");
                    }
                }
            }
        }
    }

    fn on_frame(&mut self, sock: &PacketSocket, frame: &[u8], shared: &Shared) {
        bump(&shared.counters.frames_received);
        match self.responder.handle(frame) {
            Verdict::Reply { frame, kind } => match sock.send(&frame) {
                Ok(_) => shared.counters.reply(kind),
                Err(e) => {
                    bump(&shared.counters.send_errors);
                    debug!(error = %e, "reply not sent");
                }
            },
            Verdict::Conflict { ip, other_mac } => {
                bump(&shared.counters.conflicts);
                let now = std::time::Instant::now();
                let last = self.conflicts.get(&(ip, other_mac)).copied();
                if last.is_none_or(|t| now.duration_since(t) >= CONFLICT_REPORT_EVERY) {
                    if self.conflicts.len() > 1024 {
                        self.conflicts.clear();
                    }
                    self.conflicts.insert((ip, other_mac), now);
                    warn!(%ip, %other_mac, "another host claims an owned IP");
                    shared.emit(L2Event::Conflict {
                        ip,
                        iface: self.iface.clone(),
                        other_mac,
                    });
                }
            }
            Verdict::Drop(reason) => shared.counters.drop_reason(reason),
        }
    }
}

/// Frames handled per readiness before yielding to the other branches (owned-set updates,
/// announcements, other interfaces).
const BATCH: usize = 256;

async fn iface_task(
    shared: Arc<Shared>,
    iface: String,
    ifindex: u32,
    mac: MacAddr,
    mut owned_rx: watch::Receiver<BTreeSet<IpAddr>>,
    reannounce: Arc<Notify>,
) {
    let sock = match PacketSocket::open_index(&iface, ifindex) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot serve interface");
            shared.emit(L2Event::SocketError {
                iface: iface.clone(),
                error: error_chain(&e),
            });
            return;
        }
    };
    let sock = match sock.into_async() {
        Ok(s) => s,
        Err(source) => {
            let e = Error::Register {
                iface: iface.clone(),
                source,
            };
            shared.emit(L2Event::SocketError {
                iface: iface.clone(),
                error: error_chain(&e),
            });
            return;
        }
    };
    info!(%mac, "serving interface");
    let mut st = IfaceState {
        iface,
        responder: Responder::new(mac),
        owned: BTreeSet::new(),
        groups: BTreeMap::new(),
        schedule: AnnounceSchedule::new(
            shared.config.announce_count,
            shared.config.announce_interval,
        ),
        conflicts: HashMap::new(),
    };
    let first = owned_rx.borrow_and_update().clone();
    st.apply(sock.get_ref(), first, &shared);
    let mut buf = vec![0u8; 2048 + TAG_ROOM];
    loop {
        let next = st.schedule.next_due().map(Instant::from_std);
        tokio::select! {
            biased;
            changed = owned_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let new = owned_rx.borrow_and_update().clone();
                st.apply(sock.get_ref(), new, &shared);
            }
            _ = reannounce.notified() => {
                let all: Vec<IpAddr> = st.owned.iter().copied().collect();
                st.announce(&all);
            }
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                st.send_due(sock.get_ref(), &shared);
            }
            guard = sock.readable() => {
                let mut guard = match guard {
                    Ok(g) => g,
                    Err(e) => {
                        shared.emit(L2Event::SocketError { iface: st.iface.clone(), error: e.to_string() });
                        return;
                    }
                };
                for _ in 0..BATCH {
                    // A set_owned that landed while we were busy takes effect before the
                    // next frame: a removed IP is never answered after set_owned returned.
                    if owned_rx.has_changed().unwrap_or(false) {
                        let new = owned_rx.borrow_and_update().clone();
                        st.apply(sock.get_ref(), new, &shared);
                    }
                    match sock.get_ref().try_recv(&mut buf) {
                        Ok(range) => st.on_frame(sock.get_ref(), &buf[range], &shared),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            guard.clear_ready();
                            break;
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                            guard.clear_ready();
                            break;
                        }
                        Err(e) => {
                            warn!(error = %e, "receive failed");
                            guard.clear_ready();
                            break;
                        }
                    }
                }
                if let Ok(n) = sock.get_ref().kernel_drops()
                    && n > 0
                {
                    shared.counters.kernel_drops.fetch_add(u64::from(n), Ordering::Relaxed);
                }
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
