//! The Lease adapter: reads the Lease, asks [`crate::lease::decide`], writes the result with
//! optimistic concurrency (a `resourceVersion` conflict means another replica won).

use std::future::Future;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::utils::Backoff;

use crate::error::Error;
use crate::lease::{LeaseAction, LeaseParams, LeaseView, decide, lost, next_view};

/// One replica's side of the election.
#[derive(Clone)]
pub struct LeaseElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    params: LeaseParams,
}

fn view(lease: &Lease) -> LeaseView {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseView {
        holder: spec.holder_identity,
        renew_time: spec.renew_time.map(|t| t.0),
        duration_secs: spec.lease_duration_seconds,
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// Create/replace with field manager `ferrolb-controller`.
fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(super::sink::FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl LeaseElector {
    /// The elector for Lease `namespace/name`, as `identity`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: impl Into<String>,
        identity: impl Into<String>,
        params: LeaseParams,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            params,
        }
    }

    /// The timing parameters.
    pub fn params(&self) -> &LeaseParams {
        &self.params
    }

    fn err(&self, what: &str, source: kube::Error) -> Error {
        Error::Kube {
            what: format!("{what} Lease {}", self.name),
            source,
        }
    }

    /// One attempt to acquire or renew. `Ok(true)`: we hold the Lease now.
    pub async fn try_lead(&self) -> Result<bool, Error> {
        let current = match self.api.get(&self.name).await {
            Ok(l) => Some(l),
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(self.err("read", e)),
        };
        let now = Timestamp::now();
        let cur_view = current.as_ref().map(view);
        let action = decide(now, &self.identity, cur_view.as_ref(), &self.params);
        let Some(next) = next_view(
            now,
            &self.identity,
            cur_view.as_ref(),
            &action,
            &self.params,
        ) else {
            if let LeaseAction::Standby { holder, until } = &action {
                tracing::debug!(%holder, %until, "lease held by another replica");
            }
            return Ok(false);
        };
        let acquire_time = match action {
            LeaseAction::Renew => current
                .as_ref()
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.acquire_time.clone())
                .or(Some(MicroTime(now))),
            _ => Some(MicroTime(now)),
        };
        let spec = LeaseSpec {
            holder_identity: next.holder,
            lease_duration_seconds: next.duration_secs,
            lease_transitions: Some(next.transitions),
            renew_time: next.renew_time.map(MicroTime),
            acquire_time,
            ..LeaseSpec::default()
        };
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&post_params(), &lease).await
            }
            Some(mut lease) => {
                lease.spec = Some(spec);
                lease.metadata.managed_fields = None;
                self.api.replace(&self.name, &post_params(), &lease).await
            }
        };
        match result {
            Ok(_) => {
                if matches!(action, LeaseAction::Create | LeaseAction::Acquire) {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                }
                Ok(true)
            }
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(self.err("write", e)),
        }
    }

    /// Gives the Lease up if we hold it (empty holder, 1 s duration): the standby takes over
    /// at its next retry instead of waiting for expiry.
    pub async fn release(&self) -> Result<(), Error> {
        let mut lease = match self.api.get(&self.name).await {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(self.err("read", e)),
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.metadata.managed_fields = None;
        match self.api.replace(&self.name, &post_params(), &lease).await {
            Ok(_) => {
                tracing::info!(lease = %self.name, "lease released");
                Ok(())
            }
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(self.err("release", e)),
        }
    }

    /// Retries every `retry_every` until we lead (`true`) or `shutdown` completes (`false`).
    /// Failed attempts (API server unreachable) are logged and retried sooner, with the watch
    /// backoff (100 ms .. 1 s), so that leadership resumes within about a second of the API
    /// server's return.
    pub async fn acquire(&self, shutdown: impl Future<Output = ()>) -> bool {
        tokio::pin!(shutdown);
        let mut errors = super::watch_backoff();
        loop {
            let wait = match self.try_lead().await {
                Ok(true) => return true,
                Ok(false) => {
                    errors.reset();
                    self.params.retry_every
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leader election attempt failed");
                    errors.next().unwrap_or(self.params.retry_every)
                }
            };
            tokio::select! {
                _ = &mut shutdown => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Renews every `renew_every` (every `retry_every` after a failed renewal, so that a
    /// short API server outage does not cost the Lease); completes when the Lease is lost
    /// (not renewed for a whole lease duration, or taken by another replica).
    pub async fn hold(&self) {
        let mut last_ok = Timestamp::now();
        let mut wait = self.params.renew_every;
        loop {
            tokio::time::sleep(wait).await;
            match self.try_lead().await {
                Ok(true) => {
                    last_ok = Timestamp::now();
                    wait = self.params.renew_every;
                }
                Ok(false) => {
                    tracing::warn!(lease = %self.name, "lease taken by another replica");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed");
                    wait = self.params.retry_every.min(self.params.renew_every);
                }
            }
            if lost(Timestamp::now(), last_ok, &self.params) {
                tracing::warn!(lease = %self.name, "lease not renewed in time; giving up leadership");
                return;
            }
        }
    }
}
