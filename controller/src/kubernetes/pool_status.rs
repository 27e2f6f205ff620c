//! IPAddressPool status: one writer task, computed from the allocator's state at the moment
//! of writing, coalesced (latest wins, at most one write round in flight).
//!
//! Reconciles, deletions and configuration changes only mark the pool status dirty
//! ([`Context::pool_status_changed`]). The writer wakes, reads the usage of every pool from
//! the allocator *then*, patches the pools whose status changed, and waits at least
//! [`MIN_INTERVAL`] before the next round; marks arriving meanwhile collapse into one. Since
//! the usage is read after the last mark, the last write always reflects the allocator's
//! final state: snapshots taken by concurrent reconciles can no longer be written out of
//! order (the status went stale under bursts of Service creations before).

use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::v1alpha1::{IPAddressPool, IPAddressPoolStatus};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::reconcile::{Context, backoff};
use super::sink::{FIELD_MANAGER, KubeSink};
use crate::allocator::PoolUsage;
use crate::error::Error;

/// Shortest time between two write rounds (bursts of allocations become one write per pool
/// per interval).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// The status of a pool with `usage`.
pub fn status_of(u: &PoolUsage) -> IPAddressPoolStatus {
    IPAddressPoolStatus {
        assigned_ipv4: sat(u.assigned_v4),
        assigned_ipv6: sat(u.assigned_v6),
        available_ipv4: sat(u.available_v4),
        available_ipv6: sat(u.available_v6),
    }
}

fn sat(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl KubeSink {
    /// Merge-patches the status of every pool whose usage differs from what was last written
    /// (field manager `ferrolb-controller`). A pool that no longer exists (404) is skipped.
    pub async fn write_pool_status(&self, usage: &[PoolUsage]) -> Result<(), Error> {
        let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), &self.namespace);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        for u in usage {
            let status = status_of(u);
            if self.pool_written(&u.pool).as_ref() == Some(&status) {
                continue;
            }
            let patch = json!({ "status": status });
            match api.patch_status(&u.pool, &pp, &Patch::Merge(&patch)).await {
                Ok(_) => self.set_pool_written(&u.pool, Some(status)),
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    self.set_pool_written(&u.pool, None);
                    tracing::debug!(pool = %u.pool, "pool gone before its status was written");
                }
                Err(source) => {
                    return Err(Error::Kube {
                        what: format!(
                            "patch the status of IPAddressPool {}/{}",
                            self.namespace, u.pool
                        ),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Context {
    /// Marks the pool status dirty: the writer task rewrites it from the allocator's state.
    pub fn pool_status_changed(&self) {
        self.pool_dirty.notify_one();
    }

    /// The pool-status writer (see the module documentation). Runs until aborted; a failed
    /// write is counted, logged and retried with backoff (1 s, 2 s, ... 5 min).
    pub async fn run_pool_status_writer(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            self.pool_dirty.notified().await;
            let usage = self.core().pool_usage();
            self.metrics.set_usage(&usage);
            match self.sink.write_pool_status(&usage).await {
                Ok(()) => {
                    failures = 0;
                    tokio::time::sleep(MIN_INTERVAL).await;
                }
                Err(e) => {
                    self.metrics.error(e.reason());
                    let delay = backoff(failures);
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, ?delay, "failed to write pool status; retrying");
                    self.pool_dirty.notify_one();
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
