//! API contract tests: the exact requests (method, path, query, body) the Kubernetes adapter
//! sends, against kube's `tower-test` mock service (the ApiServerVerifier pattern of kube's
//! controller-rs). Each test scripts the API server's side: it receives the next request,
//! checks it, and answers.

use std::sync::Arc;

use ferrolb_controller::decide::Core;
use ferrolb_controller::kubernetes::{Context, KubeSink, LeaseElector, error_policy, reconcile};
use ferrolb_controller::lease::LeaseParams;
use ferrolb_controller::metrics::Metrics;
use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::IPAddressPool;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
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
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    }))
    .unwrap()
}

/// Answers the four requests of a successful first allocation (status, pool annotation,
/// Event, pool status).
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
    let a = next(
        api,
        StatusCode::OK,
        serde_json::to_value(service(name)).unwrap(),
    )
    .await;
    assert!(a.path.ends_with(&format!("/services/{name}")), "{}", a.path);
    let e = next(api, StatusCode::CREATED, json!({})).await;
    assert!(e.path.ends_with("/events"), "{}", e.path);
    let p = next(api, StatusCode::OK, pool_reply("prod")).await;
    assert!(p.path.ends_with("/status"), "{}", p.path);
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

#[tokio::test]
async fn allocation_patches_status_publishes_event_and_pool_status() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10-192.0.2.11"])]);
    let task = tokio::spawn(reconcile(Arc::new(service("web")), ctx.clone()));

    // 1. Service status, server-side apply on the status subresource.
    let s = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    assert_eq!(s.method, Method::PATCH);
    assert_eq!(s.path, "/api/v1/namespaces/default/services/web/status");
    assert!(
        has_query(&s, "fieldManager", "ferrolb-controller"),
        "{:?}",
        s.query
    );
    assert!(has_query(&s, "force", "true"), "{:?}", s.query);
    assert_eq!(
        s.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(s.body["apiVersion"], "v1");
    assert_eq!(s.body["kind"], "Service");
    assert_eq!(
        s.body["status"]["loadBalancer"],
        json!({"ingress": [{"ip": "192.0.2.10"}]})
    );
    let cond = &s.body["status"]["conditions"][0];
    assert_eq!(cond["type"], "ferrolb.io/IPAllocated");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "IPAllocated");
    assert_eq!(cond["message"], "assigned 192.0.2.10 from pool prod");
    assert!(cond["lastTransitionTime"].is_string());

    // 2. MetalLB's informational annotation, server-side apply of that one field.
    let a = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    assert_eq!(a.method, Method::PATCH);
    assert_eq!(a.path, "/api/v1/namespaces/default/services/web");
    assert!(
        has_query(&a, "fieldManager", "ferrolb-controller"),
        "{:?}",
        a.query
    );
    assert_eq!(
        a.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        a.body,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default", "annotations": {"ferrolb.io/ip-allocated-from-pool": "prod"}}})
    );

    // 3. The Event, about the Service (with its uid, so `kubectl describe` shows it).
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(e.method, Method::POST);
    assert_eq!(e.path, "/apis/events.k8s.io/v1/namespaces/default/events");
    assert_eq!(e.body["reason"], "IPAllocated");
    assert_eq!(e.body["type"], "Normal");
    assert_eq!(e.body["note"], "assigned 192.0.2.10 from pool prod");
    assert_eq!(e.body["reportingController"], "ferrolb-controller");
    assert_eq!(e.body["reportingInstance"], "ctl-0");
    assert_eq!(
        e.body["regarding"],
        json!({"apiVersion": "v1", "kind": "Service", "namespace": "default", "name": "web", "uid": "uid-web"})
    );

    // 4. Pool status, merge patch on the status subresource.
    let p = next(&mut api, StatusCode::OK, pool_reply("prod")).await;
    assert_eq!(p.method, Method::PATCH);
    assert_eq!(
        p.path,
        "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/ipaddresspools/prod/status"
    );
    assert_eq!(
        p.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        p.body,
        json!({"status": {"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 1, "availableIPv6": 0}})
    );

    let action = task.await.unwrap().unwrap();
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn failure_is_a_warning_event_and_a_false_condition() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    // web takes the only address (3 requests), web2 fails.
    let t = tokio::spawn(reconcile(Arc::new(service("web")), ctx.clone()));
    serve_allocation(&mut api, "web").await;
    t.await.unwrap().unwrap();

    let t = tokio::spawn(reconcile(Arc::new(service("web2")), ctx.clone()));
    let s = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web2")).unwrap(),
    )
    .await;
    assert_eq!(s.path, "/api/v1/namespaces/default/services/web2/status");
    assert_eq!(s.body["status"]["loadBalancer"], json!({"ingress": []}));
    let cond = &s.body["status"]["conditions"][0];
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "PoolExhausted");
    assert_eq!(cond["message"], "pool prod has no free IPv4 address");
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(e.body["reason"], "AllocationFailed");
    assert_eq!(e.body["type"], "Warning");
    assert_eq!(e.body["note"], "pool prod has no free IPv4 address");
    // Pool usage did not change: no pool status write. Re-check later.
    let action = t.await.unwrap().unwrap();
    assert_eq!(
        action,
        Action::requeue(ferrolb_controller::kubernetes::reconcile::FAILED_RECHECK)
    );
}

#[tokio::test]
async fn delete_releases_and_updates_pool_status() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    let t = tokio::spawn(reconcile(Arc::new(service("web")), ctx.clone()));
    serve_allocation(&mut api, "web").await;
    t.await.unwrap().unwrap();

    let key = ferrolb_controller::allocator::ServiceKey::new("default", "web");
    let t = tokio::spawn({
        let ctx = ctx.clone();
        async move { ctx.deleted(&key).await }
    });
    let p = next(&mut api, StatusCode::OK, pool_reply("prod")).await;
    assert_eq!(p.method, Method::PATCH);
    assert_eq!(
        p.path,
        "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/ipaddresspools/prod/status"
    );
    assert_eq!(p.body["status"]["assignedIPv4"], 0);
    assert_eq!(p.body["status"]["availableIPv4"], 1);
    t.await.unwrap().unwrap();
    // No write to the (deleted) Service and no finalizer anywhere: nothing else was sent.
    assert!(quiet(&mut api).await);
}

#[tokio::test]
async fn invalid_pool_gives_event_configuration_state_and_keeps_the_rest() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![]);
    let res = ClusterResources {
        pools: vec![
            pool("good", &["192.0.2.10/31"]),
            pool("bad", &["192.0.2.30-192.0.2.20"]),
        ],
        ..Default::default()
    };
    let t = tokio::spawn({
        let ctx = ctx.clone();
        async move { ctx.apply_config(&res).await.map(|d| d.errors.len()) }
    });
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(
        e.path,
        "/apis/events.k8s.io/v1/namespaces/ferrolb-system/events"
    );
    assert_eq!(e.body["reason"], "InvalidConfiguration");
    assert_eq!(e.body["type"], "Warning");
    assert_eq!(e.body["regarding"]["kind"], "IPAddressPool");
    assert_eq!(e.body["regarding"]["name"], "bad");
    assert_eq!(e.body["regarding"]["uid"], "uid-bad");
    assert!(
        e.body["note"]
            .as_str()
            .unwrap()
            .contains("192.0.2.30-192.0.2.20")
    );

    let c = next(&mut api, StatusCode::OK, json!({"apiVersion": "ferrolb.io/v1alpha1", "kind": "ConfigurationState", "metadata": {"name": "controller"}, "spec": {}})).await;
    assert_eq!(c.method, Method::PATCH);
    assert_eq!(
        c.path,
        "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/configurationstates/controller"
    );
    assert_eq!(
        c.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(c.body["spec"], json!({"component": "controller"}));

    let cs = next(&mut api, StatusCode::OK, json!({"apiVersion": "ferrolb.io/v1alpha1", "kind": "ConfigurationState", "metadata": {"name": "controller"}, "spec": {}})).await;
    assert_eq!(
        cs.path,
        "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/configurationstates/controller/status"
    );
    assert_eq!(cs.body["status"]["result"], "Invalid");
    assert_eq!(cs.body["status"]["errorCount"], 1);
    assert_eq!(cs.body["status"]["errors"][0]["kind"], "IPAddressPool");
    assert_eq!(cs.body["status"]["errors"][0]["name"], "bad");
    assert_eq!(cs.body["status"]["errors"][0]["field"], "spec.addresses[0]");

    // The valid pool applies.
    let p = next(&mut api, StatusCode::OK, pool_reply("good")).await;
    assert_eq!(
        p.path,
        "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/ipaddresspools/good/status"
    );
    assert_eq!(p.body["status"]["availableIPv4"], 2);
    assert_eq!(t.await.unwrap().unwrap(), 1);
}

#[tokio::test]
async fn api_error_goes_to_error_policy_with_backoff() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    let svc = Arc::new(service("web"));
    let t = tokio::spawn(reconcile(svc.clone(), ctx.clone()));
    next(
        &mut api,
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "boom", "reason": "InternalError", "code": 500}),
    )
    .await;
    let err = t.await.unwrap().unwrap_err();
    assert_eq!(err.reason(), "Kube");
    assert!(
        err.to_string()
            .contains("patch the status of Service default/web")
    );
    let a1 = error_policy(svc.clone(), &err, ctx.clone());
    let a2 = error_policy(svc.clone(), &err, ctx.clone());
    assert_eq!(a1, Action::requeue(std::time::Duration::from_secs(1)));
    assert_eq!(a2, Action::requeue(std::time::Duration::from_secs(2)));
    let label = ferrolb_controller::metrics::ErrorLabel {
        error: "Kube".into(),
    };
    assert_eq!(ctx.metrics.reconcile_errors.get_or_create(&label).get(), 2);

    // The retry writes the same address (the allocation was kept, not redone).
    let t = tokio::spawn(reconcile(svc, ctx.clone()));
    let s = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    assert_eq!(
        s.body["status"]["loadBalancer"],
        json!({"ingress": [{"ip": "192.0.2.10"}]})
    );
    next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    next(&mut api, StatusCode::CREATED, json!({})).await;
    next(&mut api, StatusCode::OK, pool_reply("prod")).await;
    t.await.unwrap().unwrap();
}

fn lease(holder: &str, renew: &str, rv: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "ferrolb-controller", "namespace": "ferrolb-system", "resourceVersion": rv},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renew,
                 "acquireTime": renew, "leaseTransitions": 2},
    })
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

const LEASE_PATH: &str =
    "/apis/coordination.k8s.io/v1/namespaces/ferrolb-system/leases/ferrolb-controller";

fn elector(client: Client, me: &str) -> LeaseElector {
    LeaseElector::new(
        client,
        "ferrolb-system",
        "ferrolb-controller",
        me,
        LeaseParams::default(),
    )
}

#[tokio::test]
async fn lease_is_created_when_missing() {
    let (client, mut api) = mock();
    let t = tokio::spawn(async move { elector(client, "ctl-0").try_lead().await });
    let g = next(&mut api, StatusCode::NOT_FOUND, not_found()).await;
    assert_eq!((g.method, g.path.as_str()), (Method::GET, LEASE_PATH));
    let c = next(
        &mut api,
        StatusCode::CREATED,
        lease("ctl-0", "2026-01-01T00:00:00.000000Z", "1"),
    )
    .await;
    assert_eq!(c.method, Method::POST);
    assert_eq!(
        c.path,
        "/apis/coordination.k8s.io/v1/namespaces/ferrolb-system/leases"
    );
    assert_eq!(c.body["metadata"]["name"], "ferrolb-controller");
    assert_eq!(c.body["spec"]["holderIdentity"], "ctl-0");
    assert_eq!(c.body["spec"]["leaseDurationSeconds"], 15);
    assert_eq!(c.body["spec"]["leaseTransitions"], 0);
    assert!(c.body["spec"]["renewTime"].is_string());
    assert!(t.await.unwrap().unwrap());
}

#[tokio::test]
async fn live_lease_of_another_replica_is_left_alone() {
    let (client, mut api) = mock();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let _keep = client.clone(); // so that "no request" cannot come from a dropped client
    let t = tokio::spawn(async move { elector(client, "ctl-1").try_lead().await });
    next(&mut api, StatusCode::OK, lease("ctl-0", &now, "7")).await;
    assert!(!t.await.unwrap().unwrap());
    assert!(
        quiet(&mut api).await,
        "a standby must not write a live lease"
    );
}

#[tokio::test]
async fn expired_lease_is_taken_over_with_optimistic_concurrency() {
    let (client, mut api) = mock();
    let t = tokio::spawn(async move { elector(client, "ctl-1").try_lead().await });
    next(
        &mut api,
        StatusCode::OK,
        lease("ctl-0", "2020-01-01T00:00:00.000000Z", "7"),
    )
    .await;
    let put = next(
        &mut api,
        StatusCode::OK,
        lease("ctl-1", "2026-01-01T00:00:00.000000Z", "8"),
    )
    .await;
    assert_eq!((put.method, put.path.as_str()), (Method::PUT, LEASE_PATH));
    assert_eq!(put.body["metadata"]["resourceVersion"], "7");
    assert_eq!(put.body["spec"]["holderIdentity"], "ctl-1");
    assert_eq!(put.body["spec"]["leaseTransitions"], 3);
    assert!(t.await.unwrap().unwrap());

    // The same race lost: 409 Conflict means another replica won.
    let (client, mut api) = mock();
    let t = tokio::spawn(async move { elector(client, "ctl-2").try_lead().await });
    next(
        &mut api,
        StatusCode::OK,
        lease("ctl-0", "2020-01-01T00:00:00.000000Z", "7"),
    )
    .await;
    next(
        &mut api,
        StatusCode::CONFLICT,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"}),
    )
    .await;
    assert!(!t.await.unwrap().unwrap());
}

#[tokio::test]
async fn holder_renews_and_releases_on_shutdown() {
    let (client, mut api) = mock();
    let e = elector(client, "ctl-0");
    let e2 = e.clone();
    let t = tokio::spawn(async move { e2.try_lead().await });
    next(
        &mut api,
        StatusCode::OK,
        lease("ctl-0", "2026-01-01T00:00:00.000000Z", "7"),
    )
    .await;
    let put = next(
        &mut api,
        StatusCode::OK,
        lease("ctl-0", "2026-01-01T00:00:05.000000Z", "8"),
    )
    .await;
    assert_eq!(put.method, Method::PUT);
    assert_eq!(put.body["spec"]["holderIdentity"], "ctl-0");
    assert_eq!(
        put.body["spec"]["leaseTransitions"], 2,
        "renewal is not a transition"
    );
    assert_eq!(
        put.body["spec"]["acquireTime"], "2026-01-01T00:00:00.000000Z",
        "acquireTime is kept on renewal"
    );
    assert_ne!(put.body["spec"]["renewTime"], "2026-01-01T00:00:00.000000Z");
    assert!(t.await.unwrap().unwrap());

    let t = tokio::spawn(async move { e.release().await });
    next(
        &mut api,
        StatusCode::OK,
        lease("ctl-0", "2026-01-01T00:00:05.000000Z", "8"),
    )
    .await;
    let put = next(
        &mut api,
        StatusCode::OK,
        lease("", "2026-01-01T00:00:06.000000Z", "9"),
    )
    .await;
    assert_eq!((put.method, put.path.as_str()), (Method::PUT, LEASE_PATH));
    assert!(
        put.body["spec"].get("holderIdentity").is_none(),
        "{}",
        put.body
    );
    assert_eq!(put.body["spec"]["leaseDurationSeconds"], 1);
    assert_eq!(put.body["metadata"]["resourceVersion"], "8");
    t.await.unwrap().unwrap();
}

/// Start-up as leader against a scripted API server: the first request fails (retried after
/// a backoff); pools and namespaces are listed, then Services, and only then does anything
/// get allocated. A Service that already had an address keeps it (even though it is not the
/// lowest free one).
#[tokio::test]
async fn startup_restores_recorded_addresses_before_allocating() {
    use ferrolb_controller::kubernetes::{KubeOptions, lead};

    let (client, mut api) = mock();
    let mut recorded = service("b-old");
    recorded.status = Some(
        serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.12"}]}}))
            .unwrap(),
    );
    let services = json!({"apiVersion": "v1", "kind": "ServiceList",
        "metadata": {"resourceVersion": "10"},
        "items": [serde_json::to_value(service("a-new")).unwrap(), serde_json::to_value(&recorded).unwrap()]});
    let pools = json!({"apiVersion": "ferrolb.io/v1alpha1", "kind": "IPAddressPoolList",
        "metadata": {"resourceVersion": "10"},
        "items": [serde_json::to_value(pool("prod", &["192.0.2.10-192.0.2.12"])).unwrap()]});
    let namespaces = json!({"apiVersion": "v1", "kind": "NamespaceList",
        "metadata": {"resourceVersion": "10"}, "items": [{"metadata": {"name": "default"}}]});

    let opts = KubeOptions {
        kubeconfig: None,
        namespace: "ferrolb-system".into(),
        lb_class_only: false,
        lease_name: "ferrolb-controller".into(),
        identity: "ctl-0".into(),
    };
    let health = ferrolb_telemetry::Health::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = stop_rx.await;
    };
    let stop = futures::FutureExt::shared(Box::pin(stop));
    let task = tokio::spawn({
        let health = health.clone();
        async move { lead(client, &opts, Metrics::default(), health, stop).await }
    });

    // The scripted API server: answer by path; hold watches open; record the order.
    let mut order: Vec<String> = Vec::new();
    let mut status_writes: Vec<(String, Value)> = Vec::new();
    let mut held = Vec::new();
    let mut stop_tx = Some(stop_tx);
    let mut ready_when_first_write = None;
    for _ in 0..200 {
        let Ok(Some((req, send))) =
            tokio::time::timeout(std::time::Duration::from_secs(10), api.next_request()).await
        else {
            break;
        };
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let method = req.method().clone();
        let body = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if query.contains("watch=true") {
            held.push(send); // never answered: the watch stays open
            continue;
        }
        order.push(format!("{method} {path}"));
        // The very first request fails (API server not ready): the start-up is retried.
        if order.len() == 1 {
            send.send_response(
                Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .body(Body::from(
                        serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1",
                            "status": "Failure", "reason": "ServiceUnavailable", "code": 503,
                            "message": "starting"}))
                        .unwrap(),
                    ))
                    .unwrap(),
            );
            continue;
        }
        let reply = match (method.as_str(), path.as_str()) {
            ("GET", "/api/v1/services") => services.clone(),
            ("GET", "/api/v1/namespaces") => namespaces.clone(),
            ("GET", "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/ipaddresspools") => {
                pools.clone()
            }
            ("PATCH", p)
                if p.starts_with("/api/v1/namespaces/default/services/")
                    && !p.ends_with("/status") =>
            {
                assert_eq!(
                    body["metadata"]["annotations"]["ferrolb.io/ip-allocated-from-pool"],
                    "prod"
                );
                serde_json::to_value(service(p.split('/').nth(6).unwrap())).unwrap()
            }
            ("PATCH", p) if p.starts_with("/api/v1/namespaces/default/services/") => {
                ready_when_first_write.get_or_insert(health.is_ready());
                let name = p.split('/').nth(6).unwrap().to_string();
                status_writes.push((name.clone(), body.clone()));
                serde_json::to_value(service(&name)).unwrap()
            }
            ("PATCH", p) if p.contains("/ipaddresspools/") => pool_reply("prod"),
            ("PATCH", p) if p.contains("/configurationstates/") => json!({
                "apiVersion": "ferrolb.io/v1alpha1", "kind": "ConfigurationState",
                "metadata": {"name": "controller"}, "spec": {}}),
            ("POST", p) if p.ends_with("/events") => body.clone(),
            other => panic!("unexpected request {other:?}"),
        };
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        if status_writes.len() == 2
            && let Some(tx) = stop_tx.take()
        {
            let _ = tx.send(());
        }
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("lead stops on shutdown")
        .unwrap()
        .unwrap();
    drop(held);

    // Order: config, then the Service list, then the first status write.
    let pos = |s: &str| {
        order
            .iter()
            .position(|o| o == s)
            .unwrap_or_else(|| panic!("{s} not in {order:#?}"))
    };
    let first_write = order
        .iter()
        .position(|o| o.starts_with("PATCH /api/v1/namespaces/default/services/"))
        .expect("a status write");
    assert!(
        pos("GET /apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/ipaddresspools") < first_write
    );
    assert!(pos("GET /api/v1/services") < first_write);
    assert_eq!(ready_when_first_write, Some(true), "ready once restored");

    let ingress = |name: &str| {
        status_writes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b["status"]["loadBalancer"]["ingress"].clone())
            .unwrap_or_else(|| panic!("no status write for {name}: {status_writes:#?}"))
    };
    // b-old's recorded address is not the lowest: only a restore keeps it there.
    assert_eq!(
        ingress("b-old"),
        json!([{"ip": "192.0.2.12"}]),
        "kept its address"
    );
    assert_eq!(
        ingress("a-new"),
        json!([{"ip": "192.0.2.10"}]),
        "the lowest free address"
    );
}

/// A pool change re-queues the Services still pending: with one address, one of `a`/`b` gets
/// it and the other fails (PoolExhausted); the pool watch then delivers a bigger pool, and the
/// pending one gets an address without any change to the Service itself.
#[tokio::test]
async fn pool_change_requeues_pending_services() {
    use ferrolb_controller::kubernetes::{KubeOptions, lead};

    let (client, mut api) = mock();
    let list = |kind: &str, items: Vec<Value>| json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items});
    let small = serde_json::to_value(pool("prod", &["192.0.2.10/32"])).unwrap();
    let mut bigger = serde_json::to_value(pool("prod", &["192.0.2.10-192.0.2.11"])).unwrap();
    bigger["metadata"]["resourceVersion"] = json!("11");
    let services = list(
        "ServiceList",
        vec![
            serde_json::to_value(service("a")).unwrap(),
            serde_json::to_value(service("b")).unwrap(),
        ],
    );
    let opts = KubeOptions {
        kubeconfig: None,
        namespace: "ferrolb-system".into(),
        lb_class_only: false,
        lease_name: "ferrolb-controller".into(),
        identity: "ctl-0".into(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = futures::FutureExt::shared(Box::pin(async move {
        let _ = stop_rx.await;
    }));
    let task = tokio::spawn(async move {
        lead(
            client,
            &opts,
            Metrics::default(),
            ferrolb_telemetry::Health::default(),
            stop,
        )
        .await
    });

    let mut held = Vec::new();
    let mut pool_watch = None;
    let mut delivered = false;
    let mut failed: Option<String> = None;
    let mut writes: std::collections::BTreeMap<String, usize> = Default::default();
    let mut pending_final = None;
    let mut stop_tx = Some(stop_tx);
    for _ in 0..300 {
        let Ok(Some((req, send))) =
            tokio::time::timeout(std::time::Duration::from_secs(10), api.next_request()).await
        else {
            break;
        };
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let method = req.method().clone();
        let body = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if query.contains("watch=true") {
            if path.ends_with("/ipaddresspools") && pool_watch.is_none() && !delivered {
                pool_watch = Some(send);
            } else {
                held.push(send);
            }
        } else {
            let reply = match (method.as_str(), path.as_str()) {
                ("GET", "/api/v1/services") => services.clone(),
                ("GET", "/api/v1/namespaces") => list("NamespaceList", vec![]),
                ("GET", p) if p.ends_with("/ipaddresspools") => {
                    list("IPAddressPoolList", vec![small.clone()])
                }
                ("PATCH", p)
                    if p.starts_with("/api/v1/namespaces/default/services/")
                        && !p.ends_with("/status") =>
                {
                    assert_eq!(
                        body["metadata"]["annotations"]["ferrolb.io/ip-allocated-from-pool"],
                        "prod"
                    );
                    serde_json::to_value(service(p.split('/').nth(6).unwrap())).unwrap()
                }
                ("PATCH", p) if p.starts_with("/api/v1/namespaces/default/services/") => {
                    let name = p.split('/').nth(6).unwrap().to_string();
                    *writes.entry(name.clone()).or_default() += 1;
                    let cond = &body["status"]["conditions"][0];
                    // a and b are reconciled concurrently: either may be the one that fails.
                    if cond["reason"] == "PoolExhausted" {
                        failed.get_or_insert(name.clone());
                    } else if failed.as_deref() == Some(name.as_str()) {
                        pending_final = Some(body["status"]["loadBalancer"]["ingress"].clone());
                    }
                    serde_json::to_value(service(&name)).unwrap()
                }
                ("PATCH", p) if p.contains("/ipaddresspools/") => pool_reply("prod"),
                ("PATCH", p) if p.contains("/configurationstates/") => json!({
                    "apiVersion": "ferrolb.io/v1alpha1", "kind": "ConfigurationState",
                    "metadata": {"name": "controller"}, "spec": {}}),
                ("POST", p) if p.ends_with("/events") => body.clone(),
                other => panic!("unexpected request {other:?}"),
            };
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
        // Once b has failed, the pool watch delivers the bigger pool (then ends; the watcher
        // re-watches and that request is held).
        if failed.is_some()
            && let Some(send) = pool_watch.take()
        {
            let ev = json!({"type": "MODIFIED", "object": bigger.clone()});
            let mut line = serde_json::to_vec(&ev).unwrap();
            line.push(b'\n');
            send.send_response(Response::builder().body(Body::from(line)).unwrap());
            delivered = true;
        }
        if pending_final.is_some()
            && let Some(tx) = stop_tx.take()
        {
            let _ = tx.send(());
        }
    }
    if let Some(tx) = stop_tx.take() {
        let _ = tx.send(());
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("lead stops on shutdown")
        .unwrap()
        .unwrap();
    drop(held);
    assert!(
        failed.is_some(),
        "one Service first fails with PoolExhausted"
    );
    assert_eq!(
        pending_final,
        Some(json!([{"ip": "192.0.2.11"}])),
        "the pending Service is re-queued by the pool change"
    );
    // The Service that already had its address is re-queued too, but not rewritten (the
    // reconciler remembers its own write while the watch has not caught up).
    let holder = if failed.as_deref() == Some("a") {
        "b"
    } else {
        "a"
    };
    assert_eq!(writes.get(holder), Some(&1), "{writes:?}");
}

#[tokio::test]
async fn type_change_clears_status_condition_and_annotation() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    let t = tokio::spawn(reconcile(Arc::new(service("web")), ctx.clone()));
    serve_allocation(&mut api, "web").await;
    t.await.unwrap().unwrap();

    // The same Service as the watch now shows it: our status and annotation, type ClusterIP.
    let mut changed = serde_json::to_value(service("web")).unwrap();
    changed["spec"]["type"] = json!("ClusterIP");
    changed["metadata"]["resourceVersion"] = json!("2");
    changed["metadata"]["annotations"] = json!({"ferrolb.io/ip-allocated-from-pool": "prod"});
    changed["status"] = json!({
        "loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]},
        "conditions": [{"type": "ferrolb.io/IPAllocated", "status": "True", "reason": "IPAllocated",
                        "message": "assigned 192.0.2.10 from pool prod",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    let svc: Service = serde_json::from_value(changed).unwrap();
    let t = tokio::spawn(reconcile(Arc::new(svc), ctx.clone()));
    let s = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    assert_eq!(s.path, "/api/v1/namespaces/default/services/web/status");
    assert_eq!(
        s.body,
        json!({"apiVersion": "v1", "kind": "Service", "status": {"loadBalancer": {"ingress": []}}}),
        "no condition: server-side apply removes the one we owned"
    );
    let a = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    assert_eq!(a.path, "/api/v1/namespaces/default/services/web");
    assert_eq!(
        a.body,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}})
    );
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(e.body["reason"], "IPReleased");
    let p = next(&mut api, StatusCode::OK, pool_reply("prod")).await;
    assert_eq!(p.body["status"]["assignedIPv4"], 0);
    assert_eq!(t.await.unwrap().unwrap(), Action::await_change());
}
