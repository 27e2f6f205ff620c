//! Contract tests against a mocked API server (tower-test): the exact requests the speaker
//! makes, answered the way the API server would.

use http::{Request, Response};
use kube::client::Body;

use super::*;
use crate::decide::{Announcements, L2Claim};
use crate::status::speaker_state;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mock() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

async fn next(
    handle: &mut Handle,
) -> (
    http::Method,
    String,
    serde_json::Value,
    tower_test::mock::SendResponse<Response<Body>>,
) {
    let (req, send) = handle.next_request().await.expect("a request");
    let method = req.method().clone();
    let uri = req.uri().to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (method, uri, body, send)
}

fn respond(send: tower_test::mock::SendResponse<Response<Body>>, body: serde_json::Value) {
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
}

/// A store holding `objects` (its writer is dropped: nothing changes it afterwards).
fn filled<K>(objects: Vec<K>) -> Store<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    let (store, mut writer) = reflector::store();
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(o));
    }
    store
}

fn from_yaml<K: DeserializeOwned>(yaml: &str) -> K {
    serde_saphyr::from_str(yaml).unwrap()
}

/// Stores with one Service `shop/web`, one Node `n1` and one pool `ferrolb-system/prod`.
fn stores() -> Stores {
    Stores {
        pools: filled(vec![from_yaml(
            "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: prod, namespace: ferrolb-system, uid: pool-uid, resourceVersion: \"7\"}\nspec: {addresses: [192.0.2.0/28]}",
        )]),
        l2: filled(vec![]),
        bgp: filled(vec![]),
        peers: filled(vec![]),
        communities: filled(vec![]),
        bfd: filled(vec![]),
        services: RecordStore::from_records([ServiceRecord::from_service(&from_yaml(
                "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, uid: web-uid, resourceVersion: \"42\"}",
            ))
        .unwrap()]),
        slices: RecordStore::from_records([]),
        nodes: filled(vec![from_yaml(
            "apiVersion: v1\nkind: Node\nmetadata: {name: n1, uid: node-uid}",
        )]),
        namespaces: filled(vec![]),
        secrets: filled(vec![]),
        states: filled(vec![]),
        pods: filled(vec![]),
    }
}

fn source(client: Client) -> Kubernetes {
    let (_tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some("n1".into()),
        },
    );
    Kubernetes {
        client,
        node: "n1".into(),
        namespace: "ferrolb-system".into(),
        recorder,
        stores: stores(),
        reported: Arc::default(),
        rx,
        tasks: Vec::new(),
    }
}

#[tokio::test]
async fn publish_applies_the_object_then_its_status() {
    let (client, mut handle) = mock();
    let src = source(client);
    let mut ann = Announcements::default();
    ann.l2.insert(
        "192.0.2.200".parse().unwrap(),
        L2Claim {
            interfaces: ["eth0".to_string()].into(),
            services: ["default/web".to_string()].into(),
        },
    );
    let mut state = speaker_state(
        "n1",
        "ferrolb-system",
        "eth0=192.0.2.0/24",
        &ann,
        &Default::default(),
    );
    crate::status::owned_by_node(&mut state, Some("node-uid"));
    let verifier = tokio::spawn(async move {
        let (method, uri, body, send) = next(&mut handle).await;
        assert_eq!(method, http::Method::PATCH);
        assert_eq!(
            uri,
            "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/speakerstates/n1?&force=true&fieldManager=ferrolb-speaker"
        );
        assert_eq!(
            body["metadata"]["annotations"][LINKS_ANNOTATION],
            "eth0=192.0.2.0/24"
        );
        assert_eq!(body["spec"]["nodeName"], "n1");
        let owner = &body["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["name"], &owner["uid"]),
            (&"Node".into(), &"n1".into(), &"node-uid".into()),
            "the SpeakerState goes with its Node"
        );
        assert!(
            body.get("status").is_none(),
            "status goes to the subresource"
        );
        respond(send, body.clone());
        let (method, uri, body, send) = next(&mut handle).await;
        assert_eq!(method, http::Method::PATCH);
        assert_eq!(
            uri,
            "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/speakerstates/n1/status?&force=true&fieldManager=ferrolb-speaker"
        );
        assert_eq!(body["status"]["l2Summary"], "192.0.2.200");
        assert_eq!(body["status"]["l2Addresses"][0]["interfaces"][0], "eth0");
        let mut full = body.clone();
        full["metadata"] = serde_json::json!({"name": "n1", "namespace": "ferrolb-system"});
        full["spec"] = serde_json::json!({"nodeName": "n1"});
        respond(send, full);
    });
    src.publish(state).await.unwrap();
    verifier.await.unwrap();
}

#[tokio::test]
async fn an_api_error_names_what_was_being_done() {
    let (client, mut handle) = mock();
    let src = source(client);
    let state = speaker_state(
        "n1",
        "ferrolb-system",
        "",
        &Announcements::default(),
        &Default::default(),
    );
    let verifier = tokio::spawn(async move {
        let (_, _, _, send) = next(&mut handle).await;
        send.send_response(
            Response::builder()
                .status(403)
                .body(Body::from(
                    serde_json::to_vec(&serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": "forbidden", "reason": "Forbidden", "code": 403
                    }))
                    .unwrap(),
                ))
                .unwrap(),
        );
    });
    let err = src.publish(state).await.unwrap_err();
    verifier.await.unwrap();
    assert_eq!(
        err.to_string(),
        "failed to talk to the Kubernetes API while applying SpeakerState n1"
    );
}

#[tokio::test]
async fn service_event_is_created_in_the_services_namespace() {
    let (client, mut handle) = mock();
    let src = source(client);
    let verifier = tokio::spawn(async move {
        let (method, uri, body, send) = next(&mut handle).await;
        assert_eq!(method, http::Method::POST);
        assert_eq!(uri, "/apis/events.k8s.io/v1/namespaces/shop/events?");
        assert_eq!(body["reason"], "L2Announced");
        assert_eq!(body["note"], "announced by node n1: 192.0.2.200 on eth0");
        assert_eq!(body["regarding"]["kind"], "Service");
        assert_eq!(body["regarding"]["name"], "web");
        // Without the UID `kubectl describe service` never shows the Event.
        assert_eq!(body["regarding"]["uid"], "web-uid");
        assert_eq!(body["regarding"]["resourceVersion"], "42");
        assert_eq!(body["reportingInstance"], "n1");
        respond(send, body.clone());
    });
    src.service_event(ServiceEvent {
        service: "shop/web".into(),
        reason: "L2Announced".into(),
        message: "announced by node n1: 192.0.2.200 on eth0".into(),
    })
    .await
    .unwrap();
    verifier.await.unwrap();
}

#[test]
fn peer_links_skip_this_node_and_bad_digests() {
    let mk = |node: &str, digest: &str| {
        let mut s = SpeakerState::new(
            node,
            ferrolb_crds::v1alpha1::SpeakerStateSpec {
                node_name: node.into(),
            },
        );
        s.metadata.annotations = Some([(LINKS_ANNOTATION.to_string(), digest.to_string())].into());
        s
    };
    let links = peer_links(
        &[
            mk("n1", "eth0=192.0.2.0/24"),
            mk("n2", "eth0=192.0.2.0/24"),
            mk("n3", "eth0=bad"),
        ],
        "n1",
    );
    assert_eq!(links.keys().collect::<Vec<_>>(), ["n2"]);
}

#[test]
fn speaker_pods_by_node_with_readiness() {
    let yaml = "
apiVersion: v1
kind: Pod
metadata: {name: s1, namespace: ferrolb-system}
spec: {nodeName: n1, containers: []}
status: {podIP: 192.0.2.11, conditions: [{type: Ready, status: \"True\"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: s2, namespace: ferrolb-system}
spec: {nodeName: n2, containers: []}
status: {podIP: 192.0.2.12, conditions: [{type: Ready, status: \"False\"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: s3, namespace: ferrolb-system}
spec: {containers: []}
";
    let pods: Vec<k8s_openapi::api::core::v1::Pod> = serde_saphyr::from_multiple(yaml).unwrap();
    let by_node = crate::source::speaker_pods(&pods);
    assert_eq!(by_node.len(), 2, "an unscheduled Pod is left out");
    assert!(by_node["n1"].ready);
    assert_eq!(by_node["n1"].ip, Some("192.0.2.11".parse().unwrap()));
    assert!(!by_node["n2"].ready);
}

/// Answers a status apply as the API server would: with the whole object.
fn respond_object(send: tower_test::mock::SendResponse<Response<Body>>, body: &serde_json::Value) {
    let mut full = body.clone();
    full["metadata"] = serde_json::json!({"name": "speaker-n1", "namespace": "ferrolb-system"});
    full["spec"] = serde_json::json!({"component": "speaker"});
    respond(send, full);
}

fn invalid_pool() -> ConfigError {
    ferrolb_crds::config::ObjectRef {
        kind: Kind::IPAddressPool,
        namespace: "ferrolb-system".into(),
        name: "prod".into(),
    }
    .error(
        "spec.addresses[1]",
        Some("192.0.2.x/28"),
        "\"192.0.2.x\" is not an IP address",
    )
}

#[tokio::test]
async fn config_state_is_applied_with_its_status_and_an_event_once() {
    let (client, mut handle) = mock();
    let src = source(client);
    let verifier = tokio::spawn(async move {
        let (method, uri, body, send) = next(&mut handle).await;
        assert_eq!(method, http::Method::PATCH);
        assert_eq!(
            uri,
            "/apis/ferrolb.io/v1alpha1/namespaces/ferrolb-system/configurationstates/speaker-n1?&force=true&fieldManager=ferrolb-speaker"
        );
        assert_eq!(body["spec"]["component"], "speaker");
        assert_eq!(body["spec"]["nodeName"], "n1");
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "node-uid");
        respond_object(send, &body);
        let (method, uri, body, send) = next(&mut handle).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.contains("/configurationstates/speaker-n1/status?"),
            "{uri}"
        );
        assert_eq!(body["status"]["result"], "Invalid");
        assert_eq!(body["status"]["errorCount"], 1);
        assert_eq!(body["status"]["errors"][0]["field"], "spec.addresses[1]");
        assert!(body["status"]["lastUpdate"].is_string());
        respond_object(send, &body);
        let (method, uri, body, send) = next(&mut handle).await;
        assert_eq!(method, http::Method::POST);
        assert_eq!(
            uri,
            "/apis/events.k8s.io/v1/namespaces/ferrolb-system/events?"
        );
        assert_eq!(body["reason"], "InvalidConfiguration");
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["regarding"]["kind"], "IPAddressPool");
        assert_eq!(body["regarding"]["uid"], "pool-uid");
        assert_eq!(body["reportingInstance"], "n1");
        assert!(body["note"].as_str().unwrap().contains("spec.addresses[1]"));
        respond(send, body.clone());
        // The same error again: the state is re-applied, no second Event.
        for _ in 0..2 {
            let (method, uri, body, send) = next(&mut handle).await;
            assert_eq!(method, http::Method::PATCH, "{uri}");
            respond_object(send, &body);
        }
        // Valid again: `Valid`, no errors, no Event.
        let (_, _, body, send) = next(&mut handle).await;
        respond_object(send, &body);
        let (_, _, body, send) = next(&mut handle).await;
        assert_eq!(body["status"]["result"], "Valid");
        assert_eq!(body["status"]["errorCount"], 0);
        respond_object(send, &body);
        handle
    });
    src.config_state(vec![invalid_pool()]).await.unwrap();
    src.config_state(vec![invalid_pool()]).await.unwrap();
    src.config_state(vec![]).await.unwrap();
    let mut handle = verifier.await.unwrap();
    drop(src);
    assert!(handle.next_request().await.is_none(), "no further request");
}
