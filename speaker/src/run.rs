//! The speaker's one event loop: every relevant change (a cluster snapshot, a membership
//! change, a link change) marks the state dirty; after a short debounce the loop decides
//! ([`crate::decide::desired`]), plans ([`crate::plan::plan`]), applies, and tells
//! (state, events, metrics). No per-Service tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use ferrolb_telemetry::Health;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Error;
use crate::decide::Announcements;
use crate::drivers::{Drivers, links_of};
use crate::membership::{Membership, MembershipConfig, MembershipHandle, Tuning};
use crate::metrics::Metrics;
use crate::source::ClusterSource;
use crate::writer::Writer;

mod state;
use state::LoopState;

/// Membership settings (`--members-*`).
#[derive(Clone, Debug)]
pub struct MembersOptions {
    pub bind: SocketAddr,
    pub seeds: Vec<SocketAddr>,
    pub key: Vec<u8>,
    pub tuning: Tuning,
}

/// What [`run`] needs besides the source.
#[derive(Clone, Debug)]
pub struct Options {
    /// This node's name.
    pub node: String,
    /// Namespace of the `SpeakerState` objects.
    pub namespace: String,
    /// `None`: no membership, this node alone elects itself.
    pub members: Option<MembersOptions>,
    /// Changes are collected this long before deciding.
    pub debounce: Duration,
    /// How often links and protocol counters are polled.
    pub poll: Duration,
    /// After leaving membership on shutdown, ARP/NDP keeps answering this long.
    pub l2_grace: Duration,
    /// GRACEFUL_SHUTDOWN routes are left this long before the withdraw.
    pub gshut_wait: Duration,
    /// The state is re-published at least this often (its `lastUpdate` is the speaker's
    /// heartbeat: a much older one means the speaker is gone).
    pub heartbeat: Duration,
    pub arp: ferrolb_arp::Config,
    /// `false` (`--no-l2`): L2Advertisements are ignored, so no ARP/NDP socket is ever
    /// opened and the speaker needs no CAP_NET_RAW (BGP-only installs). Set it the same on
    /// every speaker: the others would elect this node for L2 IPs it never answers.
    pub l2: bool,
}

impl Options {
    pub fn new(node: impl Into<String>) -> Options {
        Options {
            node: node.into(),
            namespace: ferrolb_crds::INSTALL_NAMESPACE.to_string(),
            members: None,
            debounce: Duration::from_millis(50),
            poll: Duration::from_millis(500),
            l2_grace: Duration::from_millis(200),
            gshut_wait: Duration::from_millis(300),
            heartbeat: HEARTBEAT,
            arp: ferrolb_arp::Config::default(),
            l2: true,
        }
    }
}

/// Default [`Options::heartbeat`].
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// How long a starting speaker waits for the seeded speakers to appear in its membership
/// before it decides anything (a node whose peers are all down decides after this).
const MEMBERSHIP_SETTLE: Duration = Duration::from_secs(1);

/// Members to wait for at start-up: this node plus one per distinct seed that is not its own
/// address.
fn settle_members(seeds: &[SocketAddr], bind: SocketAddr) -> usize {
    let others: BTreeSet<&SocketAddr> = seeds.iter().filter(|s| **s != bind).collect();
    1 + others.len()
}

/// Runs the speaker until `shutdown` completes, then stops in order: leave membership (the
/// new owner takes over), keep answering ARP/NDP `l2_grace` more, stop answering, BFD
/// AdminDown, BGP graceful shutdown / Cease.
pub async fn run(
    opts: Options,
    source: Arc<dyn ClusterSource>,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let me = opts.node.clone();
    let (mut sp, mut inputs) = Speaker::start(opts, source, metrics).await?;
    let Inputs {
        ref mut l2_events_rx,
        ref mut live_rx,
        ref mut snap_rx,
        ..
    } = inputs;

    let mut pending: Option<Instant> = Some(Instant::now());
    let mut publish_due = false;
    let mut tick = tokio::time::interval(sp.opts.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = sp.opts.heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        let debounce = sp.opts.debounce;
        let mark = |p: &mut Option<Instant>| {
            p.get_or_insert(Instant::now() + debounce);
        };
        let retry_at = sp.st.retry.next();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = async move { tokio::time::sleep_until(retry_at.expect("guarded")).await }, if retry_at.is_some() => {
                publish_due |= sp.retry_due().await?;
            }
            r = snap_rx.changed() => {
                if r.is_err() { warn!("cluster source stopped"); break; }
                mark(&mut pending);
            }
            r = live_rx.changed() => {
                if r.is_ok() {
                    info!(members = ?*live_rx.borrow(), "membership changed");
                    mark(&mut pending);
                }
            }
            Some(ev) = l2_events_rx.recv() => {
                match &ev {
                    // Logged (rate-limited) by the responder, the one place conflicts are logged.
                    ferrolb_arp::L2Event::Conflict { ip, iface, other_mac } => {
                        debug!(%ip, %iface, ?other_mac, "L2 conflict reported");
                    }
                    other => debug!(event = ?other, "link event"),
                }
                mark(&mut pending);
            }
            r = async { sp.bgp_rx.as_mut().expect("guarded").changed().await }, if sp.bgp_rx.is_some() => {
                if r.is_ok() { publish_due = true; }
            }
            ev = async { sp.bfd_rx.as_mut().expect("guarded").recv().await }, if sp.bfd_rx.is_some() => {
                publish_due |= sp.on_bfd_event(ev);
            }
            _ = heartbeat.tick() => {
                sp.st.published = None;
                publish_due = true;
                sp.st.report_config(&sp.writer);
            }
            _ = tick.tick() => {
                let (links_changed, bfd_changed) = sp.poll().await;
                if links_changed { mark(&mut pending); }
                publish_due |= bfd_changed;
            }
            _ = async { tokio::time::sleep_until(pending.expect("guarded")).await }, if pending.is_some() => {
                pending = None;
                let snap = snap_rx.borrow_and_update().clone();
                let live = live_rx.borrow_and_update().clone();
                sp.decide(&me, &snap, live).await?;
                if snap.synced && !health.is_ready() { health.set_ready(true); info!("ready"); }
                publish_due = true;
            }
        }
        // Nothing is published before the first full state: it would be empty (and, without
        // the Node's UID, unowned).
        if publish_due && sp.st.synced {
            publish_due = false;
            sp.publish(&me);
        }
    }

    health.set_ready(false);
    sp.stop(&me).await;
    Ok(())
}

/// Starts membership (`None` in the options: this node alone is the live set). Waits,
/// bounded, until the seeded speakers are heard from.
async fn start_membership(
    opts: &Options,
    metrics: &Metrics,
) -> Result<
    (
        Option<MembershipHandle>,
        watch::Receiver<BTreeSet<String>>,
        Option<watch::Sender<BTreeSet<String>>>,
    ),
    Error,
> {
    let Some(m) = &opts.members else {
        let (tx, rx) = watch::channel(BTreeSet::from([opts.node.clone()]));
        metrics.members.set(1);
        return Ok((None, rx, Some(tx)));
    };
    let (h, mut rx) = Membership::start(MembershipConfig {
        node_name: opts.node.clone(),
        bind: m.bind,
        advertise: None,
        seeds: m.seeds.clone(),
        key: m.key.clone(),
        tuning: m.tuning.clone(),
    })
    .await
    .map_err(Error::Membership)?;
    info!(bind = %m.bind, seeds = ?m.seeds, "membership started");
    let want = settle_members(&m.seeds, m.bind);
    if want > 1 {
        // Until membership has heard from the seeded speakers this node would believe it is
        // alone and claim every L2 IP for a moment (several nodes answering ARP at start-up).
        // Wait for them, bounded.
        let settled =
            tokio::time::timeout(MEMBERSHIP_SETTLE, rx.wait_for(|live| live.len() >= want))
                .await
                .is_ok();
        info!(
            settled,
            members = rx.borrow().len(),
            want,
            "initial membership"
        );
    }
    Ok((Some(h), rx, None))
}

/// The run loop's parts: drivers, membership, the loop state and the writer.
struct Speaker {
    opts: Options,
    l2: ferrolb_arp::L2Handle,
    drivers: Drivers,
    membership: Option<MembershipHandle>,
    st: LoopState,
    writer: Writer,
    metrics: Metrics,
    last_seeds: Vec<SocketAddr>,
    bgp_rx: Option<watch::Receiver<BTreeMap<ferrolb_bgp::PeerKey, ferrolb_bgp::PeerStatus>>>,
    bfd_rx: Option<tokio::sync::mpsc::UnboundedReceiver<ferrolb_bfd::BfdEvent>>,
}

/// What the loop waits on besides timers.
struct Inputs {
    l2_events_rx: tokio::sync::mpsc::Receiver<ferrolb_arp::L2Event>,
    live_rx: watch::Receiver<BTreeSet<String>>,
    snap_rx: watch::Receiver<Arc<crate::source::Snapshot>>,
    /// Without membership nobody sends on the live set; this is its sender, owned here so
    /// the channel stays open (and `changed()` pending, not erroring) while the loop runs.
    _alone_tx: Option<watch::Sender<BTreeSet<String>>>,
}

impl Speaker {
    /// Starts the L2 responder (and waits, bounded, for its first look at the links),
    /// membership and the writer.
    async fn start(
        opts: Options,
        source: Arc<dyn ClusterSource>,
        metrics: Metrics,
    ) -> Result<(Speaker, Inputs), Error> {
        if !opts.l2 {
            info!("L2 mode disabled: L2Advertisements are ignored, no ARP/NDP answers");
        }
        let (l2, l2_events_rx) =
            ferrolb_arp::L2Responder::start(opts.arp.clone()).map_err(Error::L2)?;
        // The responder polls the interfaces on its own task: wait (bounded) for its first
        // poll, so that the first decision and the BGP router ID see this node's links.
        for _ in 0..40 {
            if !l2.links().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (membership, live_rx, _alone_tx) = start_membership(&opts, &metrics).await?;
        let inputs = Inputs {
            l2_events_rx,
            live_rx,
            snap_rx: source.subscribe(),
            _alone_tx,
        };
        let sp = Speaker {
            drivers: Drivers::new(l2.clone(), &opts.node),
            st: LoopState::new(links_of(&l2), opts.l2),
            // Writes go through one task, so the loop never waits for the API server.
            writer: Writer::start(source, metrics.clone()),
            l2,
            membership,
            metrics,
            last_seeds: Vec::new(),
            bgp_rx: None,
            bfd_rx: None,
            opts,
        };
        Ok((sp, inputs))
    }
}

impl Speaker {
    /// Makes the failed driver calls that are due again. Returns whether any was made.
    async fn retry_due(&mut self) -> Result<bool, Error> {
        let actions = self.st.retry.take_due(Instant::now());
        if actions.is_empty() {
            return Ok(false);
        }
        info!(count = actions.len(), "retrying failed driver calls");
        let failed = self.drivers.apply(actions, &self.st.links).await?;
        self.st.record_failures(failed, &self.metrics);
        Ok(true)
    }

    /// One BFD event: metrics, state, and a BGP reset when the session failed. Returns
    /// whether the state to publish changed.
    fn on_bfd_event(&mut self, ev: Option<ferrolb_bfd::BfdEvent>) -> bool {
        let Some(ev) = ev else {
            self.bfd_rx = None;
            return false;
        };
        let names = self.bfd_peer_names();
        self.metrics.observe_bfd(&names, &ev);
        self.st.bfd.insert(ev.peer, ev.new);
        if ev.is_failure() {
            warn!(peer = %ev.peer, diag = ?ev.diag, "BFD down: resetting the BGP session");
            if let Some(bgp) = &self.drivers.bgp
                && let Err(error) = bgp.reset_peer(ev.peer, "BFD session down")
            {
                warn!(peer = %ev.peer, %error, "failed to reset BGP peer");
            }
        } else {
            debug!(peer = %ev.peer, old = ?ev.old, new = ?ev.new, "BFD state");
        }
        true
    }

    /// BGPPeer names by VRF and address.
    fn peer_names(&self) -> BTreeMap<ferrolb_bgp::PeerKey, String> {
        self.st
            .ann
            .peers
            .values()
            .map(|p| (crate::plan::peer_key(p), p.name.clone()))
            .collect()
    }

    /// BGPPeer names by address, of the peers that can have BFD (those in the default VRF).
    fn bfd_peer_names(&self) -> BTreeMap<IpAddr, String> {
        self.st
            .ann
            .peers
            .values()
            .filter(|p| p.vrf.is_none())
            .map(|p| (p.address, p.name.clone()))
            .collect()
    }

    /// The periodic poll: links, protocol counters, BFD sessions. Returns whether the links
    /// changed (decide again) and whether the BFD states changed (publish).
    async fn poll(&mut self) -> (bool, bool) {
        // A neighbour found (or changed) on an unnumbered peer's link is a link change too.
        let links_changed = links_of(&self.l2) != self.st.links
            || self.drivers.unnumbered.neighbours() != self.st.neighbours;
        self.metrics.observe_l2(&self.l2.counters());
        if let Some(m) = &self.membership {
            self.metrics.observe_members(&m.metrics());
        }
        let mut bfd_changed = false;
        if let Some(bgp) = &self.drivers.bgp {
            self.metrics
                .observe_bgp(&self.peer_names(), &bgp.subscribe().borrow());
            if let Some(bfd) = &self.drivers.bfd
                && let Ok(sessions) = bfd.sessions().await
            {
                self.metrics
                    .observe_bfd_sessions(&self.bfd_peer_names(), &sessions);
                self.metrics.observe_bfd_counters(&bfd.counters());
                let now: BTreeMap<_, _> = sessions.iter().map(|s| (s.peer, s.info.state)).collect();
                let echo: BTreeMap<_, _> = sessions
                    .iter()
                    .filter(|s| s.info.echo.enabled)
                    .map(|s| (s.peer, crate::status::bfd_echo(&s.info.echo)))
                    .collect();
                let auth = bfd_auth_errors(&sessions);
                if now != self.st.bfd || echo != self.st.bfd_echo || auth != self.st.bfd_auth {
                    self.st.bfd = now;
                    self.st.bfd_echo = echo;
                    self.st.bfd_auth = auth;
                    bfd_changed = true;
                }
            }
        }
        (links_changed, bfd_changed)
    }

    /// One round on the latest snapshot and live set: seeds, decide, apply, report.
    async fn decide(
        &mut self,
        me: &str,
        snap: &crate::source::Snapshot,
        mut live: BTreeSet<String>,
    ) -> Result<(), Error> {
        if let Some(pods) = &snap.speakers {
            match (&self.membership, &self.opts.members) {
                // Seeds: the configured ones plus every speaker Pod's IP.
                (Some(m), Some(mo)) => {
                    let mut seeds = mo.seeds.clone();
                    seeds.extend(
                        pods.values()
                            .filter_map(|p| p.ip)
                            .map(|ip| SocketAddr::new(ip, mo.bind.port())),
                    );
                    seeds.sort();
                    seeds.dedup();
                    if seeds != self.last_seeds {
                        info!(?seeds, "membership seeds from speaker Pods");
                        m.set_seeds(seeds.clone());
                        self.last_seeds = seeds;
                    }
                }
                // No membership: nodes whose speaker Pod is Ready are the live set.
                _ => {
                    live = pods
                        .iter()
                        .filter(|(_, p)| p.ready)
                        .map(|(n, _)| n.clone())
                        .collect()
                }
            }
        }
        self.st.links = links_of(&self.l2);
        self.st
            .step(
                me,
                snap,
                &live,
                &self.metrics,
                &self.writer,
                &mut self.drivers,
            )
            .await?;
        self.st.report_config(&self.writer);
        if self.bgp_rx.is_none()
            && let Some(bgp) = &self.drivers.bgp
        {
            self.bgp_rx = Some(bgp.subscribe());
        }
        if self.bfd_rx.is_none()
            && let Some(bfd) = &self.drivers.bfd
        {
            self.bfd_rx = Some(bfd.subscribe());
        }
        Ok(())
    }

    /// Hands the current state to the writer (when it changed).
    fn publish(&mut self, me: &str) {
        let sessions = self
            .drivers
            .bgp
            .as_ref()
            .map(|b| b.subscribe().borrow().clone())
            .unwrap_or_default();
        self.st
            .publish(me, &self.opts.namespace, &sessions, &self.writer);
    }

    /// Shutdown, in order: leave membership, `l2_grace` of ARP/NDP, then stop answering, BFD
    /// and BGP; publish that this node announces nothing (bounded: the API may be gone too).
    async fn stop(mut self, me: &str) {
        if let Some(m) = self.membership.take() {
            info!("leaving membership");
            if let Err(error) = m.leave().await {
                warn!(%error, "leaving membership failed");
            }
        }
        tokio::time::sleep(self.opts.l2_grace).await;
        info!("stopping ARP/NDP answers, BFD and BGP");
        self.drivers
            .shutdown(
                self.st.applied.l2.keys().cloned().collect::<Vec<_>>(),
                &self.st.applied.routes,
                self.opts.gshut_wait,
            )
            .await;
        self.st.ann = Announcements::default();
        self.st.published = None;
        let no_sessions = BTreeMap::new();
        self.st
            .publish(me, &self.opts.namespace, &no_sessions, &self.writer);
        if !self.writer.flush(Duration::from_secs(1)).await {
            warn!("could not publish the stopped state within 1 s");
        }
    }
}

/// Each session's last BFD authentication failure, as its peer's `lastError` says it.
fn bfd_auth_errors(sessions: &[ferrolb_bfd::SessionStatus]) -> BTreeMap<IpAddr, String> {
    sessions
        .iter()
        .filter_map(|s| {
            let f = s.last_auth_failure.as_ref()?;
            Some((
                s.peer,
                format!("BFD authentication failed from {}: {f}", s.peer),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_waits_for_every_other_distinct_seed() {
        let a: SocketAddr = "192.0.2.11:7946".parse().unwrap();
        let b: SocketAddr = "192.0.2.12:7946".parse().unwrap();
        let c: SocketAddr = "192.0.2.13:7946".parse().unwrap();
        assert_eq!(settle_members(&[a, b, c], a), 3);
        assert_eq!(settle_members(&[b, b, c], a), 3);
        assert_eq!(settle_members(&[a], a), 1);
        assert_eq!(settle_members(&[], a), 1);
    }
}
