//! Service status, Events, pool status and configuration state writes.

use super::*;

#[tokio::test]
async fn allocation_patches_status_publishes_event_and_pool_status() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10-192.0.2.11"])]);
    let task = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("web"))),
        ctx.clone(),
    ));

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
    // MetalLB's informational annotation rides along: one PATCH per allocation.
    assert_eq!(
        s.body["metadata"],
        json!({"name": "web", "namespace": "default", "annotations": {"ferrolb.io/ip-allocated-from-pool": "prod"}})
    );
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

    // 2. The Event, about the Service (with its uid and resourceVersion, so that
    // `kubectl describe` shows it), created with our field manager.
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(e.method, Method::POST);
    assert_eq!(e.path, "/apis/events.k8s.io/v1/namespaces/default/events");
    assert!(
        has_query(&e, "fieldManager", "ferrolb-controller"),
        "{:?}",
        e.query
    );
    assert_eq!(e.body["action"], "Allocate");
    assert!(e.body["eventTime"].is_string());
    assert_eq!(e.body["reason"], "IPAllocated");
    assert_eq!(e.body["type"], "Normal");
    assert_eq!(e.body["note"], "assigned 192.0.2.10 from pool prod");
    assert_eq!(e.body["reportingController"], "ferrolb-controller");
    assert_eq!(e.body["reportingInstance"], "ctl-0");
    assert_eq!(
        e.body["regarding"],
        json!({"apiVersion": "v1", "kind": "Service", "namespace": "default", "name": "web",
               "uid": "uid-web", "resourceVersion": "1"})
    );

    let action = task.await.unwrap().unwrap();
    assert_eq!(action, Next::AwaitChange);
    assert!(
        quiet(&mut api).await,
        "no pool status from the reconcile itself"
    );

    // 3. Pool status (the writer task, started late so that the order above is fixed),
    // merge patch on the status subresource, named.
    let _writer = AbortOnDrop(tokio::spawn(ctx.clone().run_pool_status_writer()));
    let p = next(&mut api, StatusCode::OK, pool_reply("prod")).await;
    assert_eq!(p.method, Method::PATCH);
    assert!(
        has_query(&p, "fieldManager", "ferrolb-controller"),
        "{:?}",
        p.query
    );
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

    assert!(quiet(&mut api).await, "nothing else is written");
}

#[tokio::test]
async fn failure_is_a_warning_event_and_a_false_condition() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    // web takes the only address (3 requests), web2 fails.
    let t = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("web"))),
        ctx.clone(),
    ));
    serve_allocation(&mut api, "web").await;
    t.await.unwrap().unwrap();

    let t = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("web2"))),
        ctx.clone(),
    ));
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
        Next::After(ferrolb_controller::kubernetes::reconcile::FAILED_RECHECK)
    );
}

#[tokio::test]
async fn delete_releases_and_updates_pool_status() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    let t = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("web"))),
        ctx.clone(),
    ));
    serve_allocation(&mut api, "web").await;
    t.await.unwrap().unwrap();

    let key = ferrolb_controller::allocator::ServiceKey::new("default", "web");
    ctx.deleted(&key).await.unwrap();
    // The allocation and the release both marked the pool status: one write, of the state
    // now (the writer reads the allocator when it writes).
    let _writer = AbortOnDrop(tokio::spawn(ctx.clone().run_pool_status_writer()));
    let p = next(&mut api, StatusCode::OK, pool_reply("prod")).await;
    assert_eq!(p.method, Method::PATCH);
    assert_eq!(
        p.path,
        "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/ipaddresspools/prod/status"
    );
    assert_eq!(p.body["status"]["assignedIPv4"], 0);
    assert_eq!(p.body["status"]["availableIPv4"], 1);
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

    assert_eq!(t.await.unwrap().unwrap(), 1);
    // The valid pool applies: the writer writes its status.
    let _writer = AbortOnDrop(tokio::spawn(ctx.clone().run_pool_status_writer()));
    let p = next(&mut api, StatusCode::OK, pool_reply("good")).await;
    assert_eq!(
        p.path,
        "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/ipaddresspools/good/status"
    );
    assert_eq!(p.body["status"]["availableIPv4"], 2);
}

#[tokio::test]
async fn api_error_goes_to_error_policy_with_backoff() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    let svc = Arc::new(SlimService::from(service("web")));
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
    assert_eq!(a1, Next::After(std::time::Duration::from_secs(1)));
    assert_eq!(a2, Next::After(std::time::Duration::from_secs(2)));
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
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(e.body["reason"], "IPAllocated");
    t.await.unwrap().unwrap();
}

/// The Service as the watch shows it after our write, then turned into a ClusterIP Service.
fn turned_cluster_ip() -> Service {
    let mut changed = serde_json::to_value(service("web")).unwrap();
    changed["spec"]["type"] = json!("ClusterIP");
    changed["metadata"]["resourceVersion"] = json!("2");
    changed["metadata"]["annotations"] = json!({"ferrolb.io/ip-allocated-from-pool": "prod"});
    changed["status"] = json!({
        "loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]},
        "conditions": [{"type": "ferrolb.io/IPAllocated", "status": "True", "reason": "IPAllocated",
                        "message": "assigned 192.0.2.10 from pool prod",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    serde_json::from_value(changed).unwrap()
}

#[tokio::test]
async fn type_change_clears_status_condition_and_annotation() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    let t = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("web"))),
        ctx.clone(),
    ));
    serve_allocation(&mut api, "web").await;
    t.await.unwrap().unwrap();

    let t = tokio::spawn(reconcile(
        Arc::new(SlimService::from(turned_cluster_ip())),
        ctx.clone(),
    ));
    let s = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    assert_eq!(s.path, "/api/v1/namespaces/default/services/web/status");
    assert_eq!(
        s.body,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": "default"},
               "status": {"loadBalancer": {"ingress": []}}}),
        "no condition, no annotation: server-side apply removes what we owned"
    );
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(e.body["reason"], "IPReleased");
    assert_eq!(t.await.unwrap().unwrap(), Next::AwaitChange);
    assert!(
        quiet(&mut api).await,
        "one PATCH: the status write took the annotation too"
    );
}

/// An annotation an earlier version applied on the Service itself survives the status write
/// (another managed-fields entry owns it): it is removed by an apply on the Service.
#[tokio::test]
async fn legacy_annotation_is_removed_where_it_was_written() {
    let (client, mut api) = mock();
    let ctx = context(client, vec![pool("prod", &["192.0.2.10/32"])]);
    let t = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("web"))),
        ctx.clone(),
    ));
    serve_allocation(&mut api, "web").await;
    t.await.unwrap().unwrap();

    let t = tokio::spawn(reconcile(
        Arc::new(SlimService::from(turned_cluster_ip())),
        ctx.clone(),
    ));
    let mut still = serde_json::to_value(service("web")).unwrap();
    still["metadata"]["annotations"] = json!({"ferrolb.io/ip-allocated-from-pool": "prod"});
    let s = next(&mut api, StatusCode::OK, still).await;
    assert_eq!(s.path, "/api/v1/namespaces/default/services/web/status");
    let a = next(
        &mut api,
        StatusCode::OK,
        serde_json::to_value(service("web")).unwrap(),
    )
    .await;
    assert_eq!(a.path, "/api/v1/namespaces/default/services/web");
    assert!(
        has_query(&a, "fieldManager", "ferrolb-controller"),
        "{:?}",
        a.query
    );
    assert_eq!(
        a.body,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}})
    );
    let e = next(&mut api, StatusCode::CREATED, json!({})).await;
    assert_eq!(e.body["reason"], "IPReleased");
    assert_eq!(t.await.unwrap().unwrap(), Next::AwaitChange);
}

/// Regression: pool status went stale under concurrent reconciles, each writing the usage it
/// had computed, in whatever order the writes finished. Here A decides first (usage 1) and
/// its status write is held until B (usage 2) is done: the last pool status written must
/// still say 2.
#[tokio::test]
async fn pool_status_is_not_stale_after_concurrent_reconciles() {
    let (client, mut api) = mock();
    let (ctx, _writer) =
        context_with_writer(client, vec![pool("prod", &["192.0.2.10-192.0.2.13"])]);
    let reply = |send: tower_test::mock::SendResponse<Response<Body>>, v: Value| {
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&v).unwrap()))
                .unwrap(),
        );
    };
    let mut pool_writes: Vec<Value> = Vec::new();
    let ta = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("a"))),
        ctx.clone(),
    ));
    // The writer may write the initial status first; A's status write is held.
    let held_a = loop {
        let (req, send) =
            tokio::time::timeout(std::time::Duration::from_secs(10), api.next_request())
                .await
                .expect("a request within 10 s")
                .expect("the client sent a request");
        let path = req.uri().path().to_string();
        if path.ends_with("/services/a/status") {
            break send;
        }
        assert!(path.contains("/ipaddresspools/"), "{path}");
        pool_writes
            .push(serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap());
        reply(send, pool_reply("prod"));
    };
    let tb = tokio::spawn(reconcile(
        Arc::new(SlimService::from(service("b"))),
        ctx.clone(),
    ));
    let mut held_a = Some(held_a);
    let mut b_done = false;
    loop {
        if b_done && let Some(send) = held_a.take() {
            reply(send, serde_json::to_value(service("a")).unwrap());
        }
        let next = tokio::time::timeout(std::time::Duration::from_millis(600), api.next_request());
        let Ok(Some((req, send))) = next.await else {
            break;
        };
        let path = req.uri().path().to_string();
        let body: Value =
            serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        if path.contains("/ipaddresspools/") {
            pool_writes.push(body);
            reply(send, pool_reply("prod"));
        } else if path.ends_with("/events") {
            if body["regarding"]["name"] == "b" {
                b_done = true;
            }
            reply(send, body);
        } else {
            let name = path.split('/').nth(6).unwrap().to_string();
            reply(send, serde_json::to_value(service(&name)).unwrap());
        }
    }
    ta.await.unwrap().unwrap();
    tb.await.unwrap().unwrap();
    let last = pool_writes.last().expect("pool status written");
    assert_eq!(
        last["status"]["assignedIPv4"], 2,
        "last pool status written must be the final usage: {pool_writes:#?}"
    );
    assert_eq!(last["status"]["availableIPv4"], 2);
}
