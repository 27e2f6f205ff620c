//! The Lease: create, standby, take-over, renewal, release.

use super::*;

fn lease(holder: &str, renew: &str, rv: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "ferrolb-controller", "namespace": "ferrolb-system", "resourceVersion": rv},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renew,
                 "acquireTime": renew, "leaseTransitions": 2},
    })
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
    assert!(
        has_query(&c, "fieldManager", "ferrolb-controller"),
        "{:?}",
        c.query
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
