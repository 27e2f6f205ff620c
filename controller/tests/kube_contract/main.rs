//! API contract tests: the exact requests (method, path, query, body) the Kubernetes adapter
//! sends, against kube's `tower-test` mock service (the ApiServerVerifier pattern of kube's
//! controller-rs). Each test scripts the API server's side: it receives the next request,
//! checks it, and answers.

mod lease;
mod startup;
mod writes;

use std::sync::Arc;

use ferrolb_controller::decide::Core;
use ferrolb_controller::kubernetes::{
    Context, KubeSink, LeaseElector, Next, SlimService, error_policy, reconcile,
};
use ferrolb_controller::lease::LeaseParams;
use ferrolb_controller::metrics::Metrics;
use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::IPAddressPool;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mock() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

/// One request as the API server saw it.
struct Seen {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    content_type: Option<String>,
    body: Value,
}

/// Receives the next request and answers `status` + `reply`.
async fn next(handle: &mut Handle, status: StatusCode, reply: Value) -> Seen {
    let (req, send) =
        tokio::time::timeout(std::time::Duration::from_secs(10), handle.next_request())
            .await
            .expect("a request within 10 s")
            .expect("the client sent a request");
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    Seen {
        method,
        path,
        query,
        content_type,
        body,
    }
}

fn has_query(s: &Seen, k: &str, v: &str) -> bool {
    s.query.iter().any(|(a, b)| a == k && b == v)
}

fn pool(name: &str, addresses: &[&str]) -> IPAddressPool {
    serde_json::from_value(json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "ferrolb-system", "uid": format!("uid-{name}")},
        "spec": {"addresses": addresses},
    }))
    .unwrap()
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "resourceVersion": "1"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    }))
    .unwrap()
}

/// Answers the two requests of a successful first allocation: one status write (status and
/// pool annotation together), one Event. The pool status is the writer task's.
async fn serve_allocation(api: &mut Handle, name: &str) {
    let s = next(
        api,
        StatusCode::OK,
        serde_json::to_value(service(name)).unwrap(),
    )
    .await;
    assert!(
        s.path.ends_with(&format!("/services/{name}/status")),
        "{}",
        s.path
    );
    let e = next(api, StatusCode::CREATED, json!({})).await;
    assert!(e.path.ends_with("/events"), "{}", e.path);
}

/// True when the client sends nothing more (it may also have been dropped).
async fn quiet(api: &mut Handle) -> bool {
    !matches!(
        tokio::time::timeout(std::time::Duration::from_millis(50), api.next_request()).await,
        Ok(Some(_))
    )
}

fn pool_reply(name: &str) -> Value {
    serde_json::to_value(pool(name, &["192.0.2.10/32"])).unwrap()
}

/// A context whose core already has `pools` (applied without going through the sink).
fn context(client: Client, pools: Vec<IPAddressPool>) -> Arc<Context> {
    let mut core = Core::new(false);
    core.apply_config(&ClusterResources {
        pools,
        ..Default::default()
    });
    let sink = KubeSink::new(client, "ferrolb-system", Some("ctl-0".into()));
    Arc::new(Context::new(core, sink, Metrics::default()))
}

/// [`context`] with its pool-status writer running (aborted when the guard drops).
fn context_with_writer(client: Client, pools: Vec<IPAddressPool>) -> (Arc<Context>, AbortOnDrop) {
    let ctx = context(client, pools);
    let writer = tokio::spawn(ctx.clone().run_pool_status_writer());
    (ctx, AbortOnDrop(writer))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Responder = tower_test::mock::SendResponse<Response<Body>>;

/// A request as a scripted API server sees it.
struct Req {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

/// The next request (within 10 s; `None` when none came or the client is gone) and its
/// responder.
async fn recv(api: &mut Handle) -> Option<(Req, Responder)> {
    let (req, send) = tokio::time::timeout(std::time::Duration::from_secs(10), api.next_request())
        .await
        .ok()??;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let r = Req {
        method,
        path,
        query,
        body,
    };
    Some((r, send))
}

/// Answers 200 with `v`.
fn respond(send: Responder, v: &Value) {
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(v).unwrap()))
            .unwrap(),
    );
}

/// `lead` as `identity` in a task, stopped by the returned sender.
fn spawn_lead(
    client: Client,
    identity: &str,
    health: ferrolb_telemetry::Health,
) -> (
    tokio::task::JoinHandle<Result<(), ferrolb_controller::Error>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let opts = ferrolb_controller::kubernetes::KubeOptions::new(None, identity);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = futures::FutureExt::shared(Box::pin(async move {
        let _ = stop_rx.await;
    }));
    let task = tokio::spawn(async move {
        ferrolb_controller::kubernetes::lead(client, &opts, Metrics::default(), health, stop).await
    });
    (task, stop_tx)
}

/// Waits (at most 10 s) for a `lead` task to stop cleanly.
async fn join_lead(task: tokio::task::JoinHandle<Result<(), ferrolb_controller::Error>>) {
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("lead stops on shutdown")
        .unwrap()
        .unwrap();
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}
