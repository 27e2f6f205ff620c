//! Start-up as leader (`lead`) against a scripted API server.

use super::*;

/// The controller's `ConfigurationState` listing `errors`.
fn config_state(errors: &[Value]) -> Value {
    json!({"apiVersion": "ferrolb.io/v1alpha1", "kind": "ConfigurationState",
           "metadata": {"name": "controller", "namespace": "ferrolb-system"},
           "spec": {"component": "controller"},
           "status": {"result": if errors.is_empty() { "Valid" } else { "Invalid" },
                      "errorCount": errors.len(), "errors": errors}})
}

/// Start-up as leader against a scripted API server: the first request fails (retried after
/// a backoff); pools and namespaces are listed, then Services, and only then does anything
/// get allocated. A Service that already had an address keeps it (even though it is not the
/// lowest free one).
#[tokio::test]
async fn startup_restores_recorded_addresses_before_allocating() {
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

    let health = ferrolb_telemetry::Health::default();
    let (task, stop_tx) = spawn_lead(client, "ctl-0", health.clone());

    // The scripted API server: answer by path; hold watches open; record the order.
    let mut order: Vec<String> = Vec::new();
    let mut status_writes: Vec<(String, Value)> = Vec::new();
    let mut held = Vec::new();
    let mut stop_tx = Some(stop_tx);
    let mut ready_when_first_write = None;
    for _ in 0..200 {
        let Some((
            Req {
                method,
                path,
                query,
                body,
            },
            send,
        )) = recv(&mut api).await
        else {
            break;
        };
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
            ("GET", p) if p.ends_with("/configurationstates/controller") => config_state(&[]),
            ("PATCH", p) if p.starts_with("/api/v1/namespaces/default/services/") => {
                assert!(
                    p.ends_with("/status"),
                    "{p}: one status write, nothing else"
                );
                assert_eq!(
                    body["metadata"]["annotations"]["ferrolb.io/ip-allocated-from-pool"],
                    "prod"
                );
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
        respond(send, &reply);
        if status_writes.len() == 2
            && let Some(tx) = stop_tx.take()
        {
            let _ = tx.send(());
        }
    }
    join_lead(task).await;
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
    let (task, stop_tx) = spawn_lead(client, "ctl-0", ferrolb_telemetry::Health::default());

    let mut held = Vec::new();
    let mut pool_watch = None;
    let mut delivered = false;
    let mut failed: Option<String> = None;
    let mut writes: std::collections::BTreeMap<String, usize> = Default::default();
    let mut pending_final = None;
    let mut stop_tx = Some(stop_tx);
    for _ in 0..300 {
        let Some((
            Req {
                method,
                path,
                query,
                body,
            },
            send,
        )) = recv(&mut api).await
        else {
            break;
        };
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
                ("GET", p) if p.ends_with("/configurationstates/controller") => config_state(&[]),
                ("PATCH", p) if p.starts_with("/api/v1/namespaces/default/services/") => {
                    assert!(
                        p.ends_with("/status"),
                        "{p}: one status write, nothing else"
                    );
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
            respond(send, &reply);
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
    join_lead(task).await;
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

/// Runs `lead` against a scripted API server with one invalid pool and no Service, whose
/// `ConfigurationState` lists `reported`; returns the reasons of the Events posted before the
/// configuration state is written.
async fn events_at_leader_start(reported: &[Value]) -> Vec<String> {
    let (client, mut api) = mock();
    let list = |kind: &str, items: Vec<Value>| json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items});
    let bad = serde_json::to_value(pool("bad", &["192.0.2.30-192.0.2.20"])).unwrap();
    let (task, stop_tx) = spawn_lead(client, "ctl-1", ferrolb_telemetry::Health::default());
    let mut events = Vec::new();
    let mut held = Vec::new();
    for _ in 0..50 {
        let Some((
            Req {
                method,
                path,
                query,
                body,
            },
            send,
        )) = recv(&mut api).await
        else {
            break;
        };
        if query.contains("watch=true") {
            held.push(send);
            continue;
        }
        let done = path.ends_with("/configurationstates/controller/status");
        let reply = match (method.as_str(), path.as_str()) {
            ("GET", p) if p.ends_with("/configurationstates/controller") => config_state(reported),
            ("GET", "/api/v1/services") => list("ServiceList", vec![]),
            ("GET", "/api/v1/namespaces") => list("NamespaceList", vec![]),
            ("GET", p) if p.ends_with("/ipaddresspools") => {
                list("IPAddressPoolList", vec![bad.clone()])
            }
            ("POST", p) if p.ends_with("/events") => {
                events.push(body["reason"].as_str().unwrap_or_default().to_string());
                body
            }
            ("PATCH", p) if p.contains("/configurationstates/") => config_state(&[]),
            ("PATCH", p) if p.contains("/ipaddresspools/") => bad.clone(),
            other => panic!("unexpected request {other:?}"),
        };
        respond(send, &reply);
        if done {
            break;
        }
    }
    let _ = stop_tx.send(());
    join_lead(task).await;
    drop(held);
    events
}

/// Regression: every leader start published `InvalidConfiguration` again for errors the
/// previous leader had already reported (and listed in the ConfigurationState).
#[tokio::test]
async fn invalid_configuration_is_not_reported_again_by_a_new_leader() {
    // The error as the previous leader recorded it (it still had a last good version:
    // keptPrevious differs and must not matter).
    let mut core = Core::new(false);
    let d = core.apply_config(&ClusterResources {
        pools: vec![pool("bad", &["192.0.2.30-192.0.2.20"])],
        ..Default::default()
    });
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    let mut recorded =
        serde_json::to_value(ferrolb_crds::v1alpha1::ObjectError::from(&d.errors[0])).unwrap();
    recorded["keptPrevious"] = json!(true);

    assert_eq!(
        events_at_leader_start(&[]).await,
        ["InvalidConfiguration"],
        "a first report"
    );
    assert_eq!(
        events_at_leader_start(&[recorded]).await,
        Vec::<String>::new(),
        "already reported by the previous leader"
    );
}
