//! What the run loop keeps between rounds, and the round itself: validate, decide, plan,
//! apply ([`LoopState::step`]); hand the state and the validation result to the writer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::SystemTime;

use ferrolb_crds::Config;
use ferrolb_crds::config::ConfigError;
use ferrolb_crds::v1alpha1::ObjectError;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::Error;
use crate::cluster::ClusterView;
use crate::decide::{Announcements, desired};
use crate::drivers::Drivers;
use crate::links::{Link, LinkMap, digest};
use crate::metrics::Metrics;
use crate::plan::{Applied, plan};
use crate::retry::{Failed, Retry};
use crate::status::{
    l2_events, node_uid, owned_by_node, set_bfd, set_bfd_auth_errors, set_driver_errors,
    speaker_state, stamp,
};
use crate::writer::Writer;

/// What a published state is compared by: status, annotations and owner, without timestamps.
type PublishedKey = (
    Option<ferrolb_crds::v1alpha1::SpeakerStateStatus>,
    Option<BTreeMap<String, String>>,
    Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
);

pub(super) struct LoopState {
    pub(super) config: Option<Config>,
    pub(super) applied: Applied,
    pub(super) ann: Announcements,
    pub(super) links: Vec<Link>,
    /// Last published status and annotations (without timestamps).
    pub(super) published: Option<PublishedKey>,
    /// Whether the source has delivered its first full state.
    pub(super) synced: bool,
    /// UID of this node's Node object (owner of the speaker's objects).
    pub(super) node_uid: Option<String>,
    /// Errors of the last validation, and the last list reported to the source.
    pub(super) config_errors: Vec<ConfigError>,
    pub(super) config_reported: Option<Vec<ObjectError>>,
    /// BFD session state by peer address (events, and the session list at each poll).
    pub(super) bfd: BTreeMap<IpAddr, ferrolb_bfd::State>,
    /// Echo function of the sessions whose profile has `echoMode` (at each poll).
    pub(super) bfd_echo: BTreeMap<IpAddr, ferrolb_crds::v1alpha1::BFDEchoStatus>,
    /// The last BFD authentication failure of each session that has one (at each poll).
    pub(super) bfd_auth: BTreeMap<IpAddr, String>,
    /// [`Options::l2`].
    pub(super) l2_enabled: bool,
    /// Driver calls that failed, made again with backoff until they succeed.
    pub(super) retry: Retry,
    /// Unnumbered neighbours by interface, as the last round used them.
    pub(super) neighbours: BTreeMap<String, std::net::Ipv6Addr>,
}

impl LoopState {
    pub(super) fn new(links: Vec<Link>, l2_enabled: bool) -> LoopState {
        LoopState {
            config: None,
            applied: Applied::default(),
            ann: Announcements::default(),
            links,
            published: None,
            synced: false,
            node_uid: None,
            config_errors: Vec::new(),
            config_reported: None,
            bfd: BTreeMap::new(),
            bfd_echo: BTreeMap::new(),
            bfd_auth: BTreeMap::new(),
            l2_enabled,
            retry: Retry::default(),
            neighbours: BTreeMap::new(),
        }
    }

    pub(super) async fn step(
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

        let mut ann = desired(config, &cluster, &live, &links, me);
        drivers
            .unnumbered
            .track(&crate::unnumbered::interfaces(&ann));
        self.neighbours = drivers.unnumbered.neighbours();
        let waiting = crate::unnumbered::resolve(&mut ann, &self.neighbours);
        if !waiting.is_empty() {
            debug!(peers = ?waiting, "unnumbered peers waiting for their neighbour's router advertisement");
        }
        metrics
            .unnumbered_waiting
            .set(i64::try_from(waiting.len()).unwrap_or(i64::MAX));
        for ev in l2_events(me, &self.ann.l2_owners, &ann.l2_owners) {
            writer.event(ev);
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
    pub(super) fn record_failures(&mut self, failed: Vec<Failed>, metrics: &Metrics) {
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
    pub(super) fn publish(
        &mut self,
        me: &str,
        namespace: &str,
        sessions: &BTreeMap<ferrolb_bgp::PeerKey, ferrolb_bgp::PeerStatus>,
        writer: &Writer,
    ) {
        let mut state = speaker_state(me, namespace, &digest(&self.links), &self.ann, sessions);
        set_bfd(&mut state, &self.ann, &self.bfd, &self.bfd_echo);
        set_bfd_auth_errors(&mut state, &self.ann, &self.bfd_auth);
        set_driver_errors(&mut state, self.retry.pending());
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
            .filter_map(|(a, s)| Some((a.clone(), s.uptime()?)))
            .collect();
        stamp(&mut stamped, SystemTime::now(), &uptimes);
        writer.state(stamped);
        self.published = Some(key);
    }

    /// Reports the validation result when it differs from the last one reported (never
    /// before the first full state: a partial one has dangling references). The config in
    /// force is not touched: invalid objects keep their last valid version.
    pub(super) fn report_config(&mut self, writer: &Writer) {
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
