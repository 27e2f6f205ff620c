//! Which watch errors are routine, what every cached object loses, and the paged list.

use kube::Resource;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// `kubectl apply`'s copy of the whole object, an annotation neither binary reads.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether a watch error is the API server's 410 Gone (resource version too old): the
/// watcher simply lists again, nothing is wrong.
pub fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::InitialListFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// Logs a failed watch of `what` (a kind; the watcher retries with backoff): info for
/// 410 Gone, which only means a re-list, warn for the rest.
pub fn log_watch_error(what: &str, error: &watcher::Error) {
    if is_gone(error) {
        tracing::info!(watch = what, %error, "watch expired (410 Gone); re-listing");
    } else {
        tracing::warn!(watch = what, %error, "watch failed; retrying");
    }
}

/// Drops what neither binary reads before an object enters a cache: `managedFields` and
/// `kubectl apply`'s copy of the object (together often larger than the rest of a Service;
/// with 10,000 Services this was most of a binary's memory).
pub fn trim<K: Resource>(o: &mut K) {
    let meta = o.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// Lists every object of `api`, `page` at a time (bounded memory with many objects), each
/// [`trim`]med.
pub async fn list_all<K>(api: &Api<K>, page: u32) -> Result<Vec<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut all = Vec::new();
    for_each_page(api, page, |items| all.extend(items)).await?;
    Ok(all)
}

/// Lists every object of `api`, `page` at a time, handing each page ([`trim`]med) to `f`:
/// only one page of whole objects is in memory at once.
pub async fn for_each_page<K>(
    api: &Api<K>,
    page: u32,
    mut f: impl FnMut(Vec<K>),
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut lp = ListParams::default().limit(page);
    loop {
        let list = api.list(&lp).await?;
        f(list
            .items
            .into_iter()
            .map(|mut o| {
                trim(&mut o);
                o
            })
            .collect());
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use kube::core::Status;

    use super::*;

    fn status(code: u16) -> Box<Status> {
        Status::failure("x", "y").with_code(code).boxed()
    }

    #[test]
    fn only_410_gone_counts_as_routine_expiry() {
        assert!(is_gone(&watcher::Error::WatchError(status(410))));
        assert!(is_gone(&watcher::Error::WatchStartFailed(
            kube::Error::Api(status(410))
        )));
        assert!(is_gone(&watcher::Error::WatchFailed(kube::Error::Api(
            status(410)
        ))));
        assert!(!is_gone(&watcher::Error::WatchError(status(500))));
        assert!(!is_gone(&watcher::Error::WatchFailed(kube::Error::Api(
            status(403)
        ))));
        assert!(!is_gone(&watcher::Error::InitialListFailed(
            kube::Error::Api(status(403))
        )));
        assert!(!is_gone(&watcher::Error::NoResourceVersion));
    }

    #[test]
    fn trim_drops_managed_fields_and_the_last_applied_copy_only() {
        let mut s: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "annotations": {LAST_APPLIED: "{}", "ferrolb.io/address-pool": "p"},
                         "managedFields": [{"manager": "kubectl"}]},
        }))
        .unwrap();
        trim(&mut s);
        assert!(s.metadata.managed_fields.is_none());
        let a = s.metadata.annotations.unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a["ferrolb.io/address-pool"], "p");
    }
}
