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
    let state = speaker_state(
        "n1",
        "ferrolb-system",
        "eth0=192.0.2.0/24",
        &ann,
        &Default::default(),
    );
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
