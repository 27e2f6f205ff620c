//! The speaker's one event loop: every relevant change (a cluster snapshot, a membership
//! change, a link change) marks the state dirty; after a short debounce the loop decides
//! ([`crate::decide::desired`]), plans ([`crate::plan::plan`]), applies, and tells
//! (state, events, metrics). No per-Service tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferrolb_crds::Config;
use ferrolb_crds::config::ConfigError;
use ferrolb_crds::v1alpha1::ObjectError;
pub use ferrolb_telemetry::Health;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Error;
use crate::cluster::ClusterView;
use crate::decide::{Announcements, desired};
use crate::drivers::{Drivers, links_of};
use crate::links::{Link, LinkMap, digest};
use crate::membership::{Membership, MembershipConfig, Tuning};
use crate::metrics::Metrics;
use crate::plan::{Applied, plan};
use crate::retry::{Failed, Retry};
use crate::source::ClusterSource;
use crate::status::{l2_events, node_uid, owned_by_node, set_bfd, speaker_state, stamp};
use crate::writer::Writer;

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
    if !opts.l2 {
        info!("L2 mode disabled: L2Advertisements are ignored, no ARP/NDP answers");
    }
    let (l2, mut l2_events_rx) =
        ferrolb_arp::L2Responder::start(opts.arp.clone()).map_err(Error::L2)?;
    let mut drivers = Drivers::new(l2.clone(), &me);
    // The responder polls the interfaces on its own task: wait (bounded) for its first poll,
    // so that the first decision and the BGP router ID see this node's links.
    for _ in 0..40 {
        if !l2.links().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Without membership nobody sends on the live set; `_alone_tx` is its sender, owned here
    // so the channel stays open (and `changed()` pending, not erroring) as long as the loop runs.
    let (membership, mut live_rx, _alone_tx) = match &opts.members {
        Some(m) => {
            let (h, rx) = Membership::start(MembershipConfig {
                node_name: me.clone(),
                bind: m.bind,
                advertise: None,
                seeds: m.seeds.clone(),
                key: m.key.clone(),
                tuning: m.tuning.clone(),
            })
            .await
            .map_err(Error::Membership)?;
            info!(bind = %m.bind, seeds = ?m.seeds, "membership started");
            let mut rx = rx;
            let want = settle_members(&m.seeds, m.bind);
            if want > 1 {
                // Until membership has heard from the seeded speakers this node would
                // believe it is alone and claim every L2 IP for a moment (several nodes
                // answering ARP at start-up). Wait for them, bounded.
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
            (Some(h), rx, None)
        }
        None => {
            let (tx, rx) = watch::channel(BTreeSet::from([me.clone()]));
            metrics.members.set(1);
            (None, rx, Some(tx))
        }
    };

    let mut snap_rx = source.subscribe();
    // Writes to the source go through one task, so the loop never waits for the API server.
    let writer = Writer::start(source.clone(), metrics.clone());
    let mut bgp_rx: Option<watch::Receiver<BTreeMap<IpAddr, ferrolb_bgp::PeerStatus>>> = None;
    let mut bfd_rx: Option<tokio::sync::mpsc::UnboundedReceiver<ferrolb_bfd::BfdEvent>> = None;

    let mut st = LoopState {
        config: None,
        applied: Applied::default(),
        ann: Announcements::default(),
        links: links_of(&l2),
        published: None,
        synced: false,
        node_uid: None,
        config_errors: Vec::new(),
        config_reported: None,
        bfd: BTreeMap::new(),
        l2_enabled: opts.l2,
        retry: Retry::default(),
    };
    let mut pending: Option<Instant> = Some(Instant::now());
    let mut publish_due = false;
    let mut last_seeds: Vec<SocketAddr> = Vec::new();
    let mut tick = tokio::time::interval(opts.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval_at(Instant::now() + opts.heartbeat, opts.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        let mark = |p: &mut Option<Instant>| {
            p.get_or_insert(Instant::now() + opts.debounce);
        };
        let retry_at = st.retry.next();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = async move { tokio::time::sleep_until(retry_at.expect("guarded")).await }, if retry_at.is_some() => {
                let actions = st.retry.take_due(Instant::now());
                if !actions.is_empty() {
                    info!(count = actions.len(), "retrying failed driver calls");
                    let failed = drivers.apply(actions, &st.links).await?;
                    st.record_failures(failed, &metrics);
                    publish_due = true;
                }
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
            r = async { bgp_rx.as_mut().expect("guarded").changed().await }, if bgp_rx.is_some() => {
                if r.is_ok() { publish_due = true; }
            }
            ev = async { bfd_rx.as_mut().expect("guarded").recv().await }, if bfd_rx.is_some() => {
                if let Some(ev) = &ev {
                    let names = st.ann.peers.values().map(|p| (p.address, p.name.clone())).collect();
                    metrics.observe_bfd(&names, ev);
                    st.bfd.insert(ev.peer, ev.new);
                    publish_due = true;
                }
                match ev {
                    Some(ev) if ev.is_failure() => {
                        warn!(peer = %ev.peer, diag = ?ev.diag, "BFD down: resetting the BGP session");
                        if let Some(bgp) = &drivers.bgp && let Err(error) = bgp.reset_peer(ev.peer, "BFD session down") {
                            warn!(peer = %ev.peer, %error, "failed to reset BGP peer");
                        }
                    }
                    Some(ev) => debug!(peer = %ev.peer, old = ?ev.old, new = ?ev.new, "BFD state"),
                    None => bfd_rx = None,
                }
            }
            _ = heartbeat.tick() => {
                st.published = None;
                publish_due = true;
                st.report_config(&writer);
            }
            _ = tick.tick() => {
                let links = links_of(&l2);
                if links != st.links { mark(&mut pending); }
                metrics.observe_l2(&l2.counters());
                if let Some(m) = &membership { metrics.observe_members(&m.metrics()); }
                if let Some(bgp) = &drivers.bgp {
                    let names = st.ann.peers.values().map(|p| (p.address, p.name.clone())).collect();
                    metrics.observe_bgp(&names, &bgp.subscribe().borrow());
                    if let Some(bfd) = &drivers.bfd && let Ok(sessions) = bfd.sessions().await {
                        metrics.observe_bfd_sessions(&names, &sessions);
                        let now: BTreeMap<_, _> = sessions.iter().map(|s| (s.peer, s.info.state)).collect();
                        if now != st.bfd { st.bfd = now; publish_due = true; }
                    }
                }
            }
            _ = async { tokio::time::sleep_until(pending.expect("guarded")).await }, if pending.is_some() => {
                pending = None;
                let snap = snap_rx.borrow_and_update().clone();
                let mut live = live_rx.borrow_and_update().clone();
                if let Some(pods) = &snap.speakers {
                    match (&membership, &opts.members) {
                        // Seeds: the configured ones plus every speaker Pod's IP.
                        (Some(m), Some(mo)) => {
                            let mut seeds = mo.seeds.clone();
                            seeds.extend(pods.values().filter_map(|p| p.ip).map(|ip| SocketAddr::new(ip, mo.bind.port())));
                            seeds.sort();
                            seeds.dedup();
                            if seeds != last_seeds {
                                info!(?seeds, "membership seeds from speaker Pods");
                                m.set_seeds(seeds.clone());
                                last_seeds = seeds;
                            }
                        }
                        // No membership: nodes whose speaker Pod is Ready are the live set.
                        _ => live = pods.iter().filter(|(_, p)| p.ready).map(|(n, _)| n.clone()).collect(),
                    }
                }
                st.links = links_of(&l2);
                st.step(&me, &snap, &live, &metrics, &writer, &mut drivers).await?;
                st.report_config(&writer);
                if bgp_rx.is_none() && let Some(bgp) = &drivers.bgp { bgp_rx = Some(bgp.subscribe()); }
                if bfd_rx.is_none() && let Some(bfd) = &drivers.bfd { bfd_rx = Some(bfd.subscribe()); }
                if snap.synced && !health.is_ready() { health.set_ready(true); info!("ready"); }
                publish_due = true;
            }
        }
        // Nothing is published before the first full state: it would be empty (and, without
        // the Node's UID, unowned).
        if publish_due && st.synced {
            publish_due = false;
            let sessions = drivers
                .bgp
                .as_ref()
                .map(|b| b.subscribe().borrow().clone())
                .unwrap_or_default();
            st.publish(&me, &opts.namespace, &sessions, &writer);
        }
    }

    // Shutdown, in order.
    health.set_ready(false);
    if let Some(m) = membership {
        info!("leaving membership");
        if let Err(error) = m.leave().await {
            warn!(%error, "leaving membership failed");
        }
    }
    tokio::time::sleep(opts.l2_grace).await;
    info!("stopping ARP/NDP answers, BFD and BGP");
    drivers
        .shutdown(
            st.applied.l2.keys().cloned().collect::<Vec<_>>(),
            &st.applied.routes,
            opts.gshut_wait,
        )
        .await;
    // Tell that this node announces nothing any more (bounded: the API may be gone too).
    st.ann = Announcements::default();
    st.published = None;
    let no_sessions = BTreeMap::new();
    st.publish(&me, &opts.namespace, &no_sessions, &writer);
    if !writer.flush(Duration::from_secs(1)).await {
        warn!("could not publish the stopped state within 1 s");
    }
    Ok(())
}

/// What a published state is compared by: status, annotations and owner, without timestamps.
type PublishedKey = (
    Option<ferrolb_crds::v1alpha1::SpeakerStateStatus>,
    Option<BTreeMap<String, String>>,
    Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
);

struct LoopState {
    config: Option<Config>,
    applied: Applied,
    ann: Announcements,
    links: Vec<Link>,
    /// Last published status and annotations (without timestamps).
    published: Option<PublishedKey>,
    /// Whether the source has delivered its first full state.
    synced: bool,
    /// UID of this node's Node object (owner of the speaker's objects).
    node_uid: Option<String>,
    /// Errors of the last validation, and the last list reported to the source.
    config_errors: Vec<ConfigError>,
    config_reported: Option<Vec<ObjectError>>,
    /// BFD session state by peer address (events, and the session list at each poll).
    bfd: BTreeMap<IpAddr, ferrolb_bfd::State>,
    /// [`Options::l2`].
    l2_enabled: bool,
    /// Driver calls that failed, made again with backoff until they succeed.
    retry: Retry,
}

impl LoopState {
    async fn step(
        &mut self,
        me: &str,
        snap: &crate::source::Snapshot,
        live: &BTreeSet<String>,
        metrics: &Metrics,
        writer: &Writer,
        drivers: &mut Drivers,
    ) -> Result<(), Error> {
        let outcome = Config::build(&snap.resources, self.config.as_ref());
        if !outcome.errors.is_empty() && self.config.as_ref() != Some(&outcome.config) {
            for e in &outcome.errors {
                warn!(error = %e, "invalid configuration object");
            }
        }
        metrics
            .config_errors
            .set(i64::try_from(outcome.errors.len() + snap.errors.len()).unwrap_or(i64::MAX));
        self.config = Some(outcome.config);
        self.config_errors = outcome.errors;
        self.synced = snap.synced;
        self.node_uid = node_uid(&snap.resources.nodes, me).map(String::from);
        if !self.l2_enabled
            && let Some(c) = self.config.as_mut()
        {
            c.l2_advertisements.clear();
        }
        let config = self.config.as_ref().expect("set above");

        let cluster = ClusterView::build(
            &snap.workloads,
            &snap.resources.nodes,
            snap.ingress.as_ref(),
        );
        let mut links: LinkMap = snap.peer_links.clone();
        links.insert(me.to_string(), self.links.clone());
        let mut live = live.clone();
        live.insert(me.to_string());

        let ann = desired(config, &cluster, &live, &links, me);
        for ev in l2_events(me, &self.ann.l2_owners, &ann.l2_owners) {
            writer.event(ev, metrics);
        }
        let took_over = ann
            .l2
            .keys()
            .filter(|ip| !self.ann.l2.contains_key(ip))
            .filter(|ip| {
                self.ann.l2_owners.values().any(|o| {
                    o.get(ip)
                        .is_some_and(|o| o.node.as_deref().is_some_and(|n| n != me))
                })
            })
            .count();
        metrics.failovers.inc_by(took_over as u64);
        metrics.observe_owners(&self.ann.l2_owners, &ann.l2_owners);
        metrics
            .l2_owned
            .set(i64::try_from(ann.l2.len()).unwrap_or(i64::MAX));

        let actions = plan(&self.applied, &ann);
        if !actions.is_empty() {
            debug!(count = actions.len(), "applying changes");
            self.retry.supersede(&actions);
            let failed = drivers.apply(actions, &self.links).await?;
            self.record_failures(failed, metrics);
            self.applied = Applied::from_desired(&ann);
        }
        self.ann = ann;
        Ok(())
    }

    /// Counts failed driver calls and schedules their retry (see [`crate::retry`]).
    fn record_failures(&mut self, failed: Vec<Failed>, metrics: &Metrics) {
        for f in &failed {
            metrics
                .driver_errors
                .get_or_create(&crate::metrics::DriverLabel {
                    driver: f.driver.to_string(),
                })
                .inc();
        }
        self.retry.record(failed, Instant::now(), jitter());
        metrics
            .driver_retry_pending
            .set(i64::try_from(self.retry.pending().len()).unwrap_or(i64::MAX));
        if let Some(at) = self.retry.next() {
            let f = &self.retry.pending()[0];
            warn!(pending = self.retry.pending().len(), driver = f.driver, error = %f.error, retry_in = ?at.saturating_duration_since(Instant::now()), "driver calls failed; retrying");
        }
    }

    /// Hands the state to `writer` when it differs from the last one handed over (the
    /// writer retries a failed write until it succeeds or a newer state replaces it).
    fn publish(
        &mut self,
        me: &str,
        namespace: &str,
        sessions: &BTreeMap<IpAddr, ferrolb_bgp::PeerStatus>,
        writer: &Writer,
    ) {
        let mut state = speaker_state(me, namespace, &digest(&self.links), &self.ann, sessions);
        set_bfd(&mut state, &self.ann, &self.bfd);
        owned_by_node(&mut state, self.node_uid.as_deref());
        let key = (
            state.status.clone(),
            state.metadata.annotations.clone(),
            state.metadata.owner_references.clone(),
        );
        if self.published.as_ref() == Some(&key) {
            return;
        }
        let mut stamped = state.clone();
        let uptimes = sessions
            .iter()
            .filter_map(|(a, s)| Some((*a, s.uptime()?)))
            .collect();
        stamp(&mut stamped, SystemTime::now(), &uptimes);
        writer.state(stamped);
        self.published = Some(key);
    }

    /// Reports the validation result when it differs from the last one reported (never
    /// before the first full state: a partial one has dangling references). The config in
    /// force is not touched: invalid objects keep their last valid version.
    fn report_config(&mut self, writer: &Writer) {
        if !self.synced {
            return;
        }
        let list: Vec<ObjectError> = self.config_errors.iter().map(ObjectError::from).collect();
        if self.config_reported.as_ref() == Some(&list) {
            return;
        }
        writer.config(self.config_errors.clone());
        self.config_reported = Some(list);
    }
}

/// A number in [0, 1) for retry jitter: the sub-second clock is random enough to keep
/// speakers from retrying in step.
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos) / 1e9
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
