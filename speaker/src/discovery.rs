//! Membership seeds in Kubernetes mode: the speaker Pods of the install namespace.
//!
//! A kube-runtime reflector lists and watches the Pods matching the speaker's label selector
//! (`--members-pod-selector`) in the install namespace; every change recomputes the seed list
//! ([`seeds_from_pods`]: each Running Pod with a `status.podIP`, at the membership port) and
//! sends it on a `watch`, which [`crate::run::run`] hands to
//! [`crate::membership::MembershipHandle::set_seeds`]. The speaker runs with
//! `hostNetwork: true`, so a speaker Pod's IP is its node's IP, where that speaker binds its
//! membership socket (`$(POD_IP):7946`).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) {
//! use ferrolb_speaker::discovery::{SPEAKER_POD_SELECTOR, SpeakerPods};
//! let pods = SpeakerPods::start(client, "ferrolb-system", SPEAKER_POD_SELECTOR, 7946);
//! let mut seeds = pods.subscribe();
//! seeds.changed().await.ok();
//! println!("seeds: {:?}", *seeds.borrow());
//! # }
//! ```

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// The speaker DaemonSet's pod labels in `examples/manifests/install.yaml`.
pub const SPEAKER_POD_SELECTOR: &str =
    "app.kubernetes.io/name=ferrolb,app.kubernetes.io/component=speaker";

/// The default membership UDP port (memberlist's).
pub const MEMBERS_PORT: u16 = 7946;

/// The membership addresses of `pods`: `podIP:port` of each Pod that is Running, has a
/// parseable `status.podIP` and is not being deleted. Sorted, without duplicates.
///
/// Readiness is not required: a speaker becomes ready only after its first full sync, and
/// its membership socket is open before that; a terminating Pod leaves membership itself.
pub fn seeds_from_pods(pods: &[Pod], port: u16) -> Vec<SocketAddr> {
    let set: BTreeSet<SocketAddr> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.status.as_ref())
        .filter(|s| s.phase.as_deref() == Some("Running"))
        .filter_map(|s| s.pod_ip.as_deref())
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    set.into_iter().collect()
}

/// Hands every seed list of `rx` (plus the static `seeds`) to `set` (a
/// [`crate::membership::MembershipHandle::seed_setter`]), until `rx`'s sender is dropped.
pub async fn follow_seeds(
    mut rx: watch::Receiver<Vec<SocketAddr>>,
    seeds: Vec<SocketAddr>,
    set: impl Fn(Vec<SocketAddr>),
) {
    loop {
        let mut all: BTreeSet<SocketAddr> = seeds.iter().copied().collect();
        all.extend(rx.borrow_and_update().iter().copied());
        info!(seeds = ?all, "membership seeds");
        set(all.into_iter().collect());
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The running reflector of speaker Pods; dropping it stops the watch.
pub struct SpeakerPods {
    rx: watch::Receiver<Vec<SocketAddr>>,
    task: tokio::task::JoinHandle<()>,
}

impl SpeakerPods {
    /// Lists and watches the Pods matching `selector` in `namespace`; the seed list (see
    /// [`seeds_from_pods`]) is sent on every change of it. Watch errors are logged and
    /// retried with backoff.
    pub fn start(client: Client, namespace: &str, selector: &str, port: u16) -> SpeakerPods {
        let api: Api<Pod> = Api::namespaced(client, namespace);
        let (store, writer): (Store<Pod>, _) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default().labels(selector)).default_backoff(),
        );
        let (tx, rx) = watch::channel(Vec::new());
        let task = tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(_) => {
                        let pods: Vec<Pod> = store.state().iter().map(|p| (**p).clone()).collect();
                        let seeds = seeds_from_pods(&pods, port);
                        tx.send_if_modified(|cur| {
                            if *cur == seeds {
                                return false;
                            }
                            debug!(?seeds, "speaker pods changed");
                            *cur = seeds;
                            true
                        });
                    }
                    Err(error) => warn!(%error, "watching the speaker pods failed; retrying"),
                }
            }
        });
        SpeakerPods { rx, task }
    }

    /// The current seed list, updated on every change.
    pub fn subscribe(&self) -> watch::Receiver<Vec<SocketAddr>> {
        self.rx.clone()
    }
}

impl Drop for SpeakerPods {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use kube::client::Body;

    use super::*;

    fn pod(name: &str, phase: &str, ip: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ferrolb-system".into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                pod_ip: ip.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn addrs(s: &[&str]) -> Vec<SocketAddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn running_pods_with_an_ip_become_seeds() {
        let mut deleting = pod("s4", "Running", Some("192.0.2.14"));
        deleting.metadata.deletion_timestamp = Some(Time(Default::default()));
        let pods = [
            pod("s2", "Running", Some("192.0.2.12")),
            pod("s1", "Running", Some("192.0.2.11")),
            pod("s3", "Pending", None),
            pod("s5", "Pending", Some("192.0.2.15")),
            pod("s6", "Failed", Some("192.0.2.16")),
            pod("s7", "Running", None),
            pod("s8", "Running", Some("not-an-ip")),
            pod("s9", "Running", Some("2001:db8::9")),
            deleting,
            Pod::default(),
        ];
        assert_eq!(
            seeds_from_pods(&pods, 7946),
            addrs(&["192.0.2.11:7946", "192.0.2.12:7946", "[2001:db8::9]:7946"])
        );
    }

    #[test]
    fn duplicates_collapse_and_the_port_is_used() {
        let pods = [
            pod("a", "Running", Some("192.0.2.11")),
            pod("b", "Running", Some("192.0.2.11")),
        ];
        assert_eq!(seeds_from_pods(&pods, 8000), addrs(&["192.0.2.11:8000"]));
        assert!(seeds_from_pods(&[], 7946).is_empty());
    }

    /// A discovered seed reaches a running membership: two members that start without
    /// seeds find each other once the discovery reports one of them.
    #[tokio::test]
    async fn discovered_seeds_reach_membership() {
        use crate::membership::{Membership, MembershipConfig, Tuning};
        let start = |name: &str| {
            Membership::start(MembershipConfig {
                node_name: name.into(),
                bind: "127.0.0.1:0".parse().unwrap(),
                advertise: None,
                seeds: Vec::new(),
                key: b"0123456789abcdef0123".to_vec(),
                tuning: Tuning::default(),
            })
        };
        let (a, mut a_live) = start("a").await.unwrap();
        let (b, _b_live) = start("b").await.unwrap();
        let (tx, rx) = watch::channel(Vec::new());
        let follower = tokio::spawn(follow_seeds(rx, vec![a.local_addr()], a.seed_setter()));
        tx.send(vec![b.local_addr()]).unwrap();
        let joined = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            a_live.wait_for(|l| l.contains("b")),
        )
        .await
        .is_ok();
        assert!(joined, "a never saw b: {:?}", *a_live.borrow());
        drop(tx);
        follower.await.unwrap();
    }

    fn respond(send: tower_test::mock::SendResponse<Response<Body>>, body: serde_json::Value) {
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    fn pod_json(name: &str, ip: &str, rv: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ferrolb-system", "resourceVersion": rv},
            "status": {"phase": "Running", "podIP": ip},
        })
    }

    /// The reflector lists then watches Pods in the install namespace with the speaker's
    /// label selector, and the seeds follow the list and the watch events.
    #[tokio::test]
    async fn lists_and_watches_speaker_pods_of_the_namespace() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let pods = SpeakerPods::start(client, "ferrolb-system", SPEAKER_POD_SELECTOR, 7946);
        let mut seeds = pods.subscribe();
        let selector = "labelSelector=app.kubernetes.io%2Fname%3Dferrolb%2Capp.kubernetes.io%2Fcomponent%3Dspeaker";

        let (req, send) = handle.next_request().await.expect("the list");
        assert_eq!(req.method(), http::Method::GET);
        let uri = req.uri().to_string();
        assert!(
            uri.starts_with("/api/v1/namespaces/ferrolb-system/pods?"),
            "{uri}"
        );
        assert!(uri.contains(selector), "{uri}");
        assert!(!uri.contains("watch=true"), "{uri}");
        respond(
            send,
            serde_json::json!({
                "apiVersion": "v1", "kind": "PodList",
                "metadata": {"resourceVersion": "10"},
                "items": [pod_json("s1", "192.0.2.11", "5"), pod_json("s2", "192.0.2.12", "6")],
            }),
        );
        seeds.changed().await.unwrap();
        assert_eq!(
            *seeds.borrow_and_update(),
            addrs(&["192.0.2.11:7946", "192.0.2.12:7946"])
        );

        let (req, send) = handle.next_request().await.expect("the watch");
        assert_eq!(req.method(), http::Method::GET);
        let uri = req.uri().to_string();
        assert!(
            uri.starts_with("/api/v1/namespaces/ferrolb-system/pods?"),
            "{uri}"
        );
        assert!(uri.contains("watch=true"), "{uri}");
        assert!(uri.contains("resourceVersion=10"), "{uri}");
        assert!(uri.contains(selector), "{uri}");
        let events = [
            serde_json::json!({"type": "ADDED", "object": pod_json("s3", "192.0.2.13", "11")}),
            serde_json::json!({"type": "DELETED", "object": pod_json("s1", "192.0.2.11", "12")}),
        ];
        let mut body = Vec::new();
        for e in &events {
            body.extend(serde_json::to_vec(e).unwrap());
            body.push(b'\n');
        }
        send.send_response(Response::builder().body(Body::from(body)).unwrap());
        let want = addrs(&["192.0.2.12:7946", "192.0.2.13:7946"]);
        for _ in 0..10 {
            if *seeds.borrow_and_update() == want {
                break;
            }
            seeds.changed().await.unwrap();
        }
        assert_eq!(*seeds.borrow(), want);
    }
}
