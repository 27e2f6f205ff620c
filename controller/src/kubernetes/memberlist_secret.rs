//! The speakers' membership key: the Secret `ferrolb-memberlist` (key `secretkey`) in the
//! install namespace, created by the controller at start-up when it does not exist (as
//! MetalLB's controller does). An existing Secret is never overwritten, so operators may
//! create it themselves; to rotate the key, delete it and restart the controller, then the
//! speakers.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use rand::RngCore;

use crate::error::Error;

/// Name of the Secret the speakers mount.
pub const SECRET_NAME: &str = "ferrolb-memberlist";
/// The data key holding the membership key.
pub const SECRET_KEY: &str = "secretkey";
/// Length of a generated key.
pub const KEY_LEN: usize = 32;

/// What [`ensure_memberlist_secret`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The Secret was already there (left untouched).
    Existed,
    /// This call created it.
    Created,
    /// Another replica created it between our GET and POST.
    CreatedByOther,
}

/// The Secret created when none exists.
pub fn secret(namespace: &str, key: &[u8]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "ferrolb".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            SECRET_KEY.to_string(),
            ByteString(key.to_vec()),
        )])),
        ..Default::default()
    }
}

/// Creates the Secret `ferrolb-memberlist` in `namespace` with [`KEY_LEN`] random bytes
/// (from the thread CSPRNG) unless it exists.
pub async fn ensure_memberlist_secret(client: Client, namespace: &str) -> Result<Outcome, Error> {
    ensure_with_key(client, namespace, || {
        let mut key = vec![0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        key
    })
    .await
}

/// [`ensure_memberlist_secret`] with the key source given (tests).
pub async fn ensure_with_key(
    client: Client,
    namespace: &str,
    key: impl FnOnce() -> Vec<u8>,
) -> Result<Outcome, Error> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let found = api
        .get_opt(SECRET_NAME)
        .await
        .map_err(|source| Error::Kube {
            what: format!("read the Secret {namespace}/{SECRET_NAME}"),
            source,
        })?;
    if found.is_some() {
        tracing::debug!(
            namespace,
            secret = SECRET_NAME,
            "membership key Secret exists"
        );
        return Ok(Outcome::Existed);
    }
    match api
        .create(
            &PostParams {
                field_manager: Some(super::sink::FIELD_MANAGER.into()),
                ..PostParams::default()
            },
            &secret(namespace, &key()),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(
                namespace,
                secret = SECRET_NAME,
                "created the membership key Secret"
            );
            Ok(Outcome::Created)
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(Outcome::CreatedByOther),
        Err(source) => Err(Error::Kube {
            what: format!("create the Secret {namespace}/{SECRET_NAME}"),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;

    use super::*;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn mock() -> (Client, Handle) {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (Client::new(svc, "default"), handle)
    }

    fn reply(
        send: tower_test::mock::SendResponse<Response<Body>>,
        code: u16,
        body: serde_json::Value,
    ) {
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    fn status(code: u16, reason: &str) -> serde_json::Value {
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": reason, "reason": reason, "code": code
        })
    }

    const GET_URI: &str = "/api/v1/namespaces/ferrolb-system/secrets/ferrolb-memberlist";

    #[tokio::test]
    async fn a_missing_secret_is_created_with_the_key() {
        let (client, mut handle) = mock();
        let verifier = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::GET);
            assert_eq!(req.uri().to_string(), GET_URI);
            reply(send, 404, status(404, "NotFound"));
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::POST);
            // Created with our field manager (kube writes the query as `?&`).
            assert_eq!(
                req.uri().to_string(),
                "/api/v1/namespaces/ferrolb-system/secrets?&fieldManager=ferrolb-controller"
            );
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            // 32 bytes of 0x07, base64.
            assert_eq!(
                body,
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": "ferrolb-memberlist",
                        "namespace": "ferrolb-system",
                        "labels": {"app.kubernetes.io/name": "ferrolb"},
                    },
                    "type": "Opaque",
                    "data": {"secretkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="},
                })
            );
            reply(send, 201, body);
        });
        let outcome = ensure_with_key(client, "ferrolb-system", || vec![7; KEY_LEN])
            .await
            .unwrap();
        verifier.await.unwrap();
        assert_eq!(outcome, Outcome::Created);
    }

    #[tokio::test]
    async fn an_existing_secret_is_left_alone() {
        let (client, mut handle) = mock();
        let verifier = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::GET);
            assert_eq!(req.uri().to_string(), GET_URI);
            reply(
                send,
                200,
                serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "ferrolb-memberlist", "namespace": "ferrolb-system"},
                    "data": {"secretkey": "b3BlcmF0b3Ita2V5LW9wZXJhdG9yLWtleQ=="},
                }),
            );
            // No further request: the mock reports the client side closed.
            assert!(handle.next_request().await.is_none());
        });
        let outcome = ensure_with_key(client, "ferrolb-system", || {
            panic!("no key is generated when the Secret exists")
        })
        .await
        .unwrap();
        assert_eq!(outcome, Outcome::Existed);
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn a_create_race_is_not_an_error_but_a_forbidden_get_is() {
        let (client, mut handle) = mock();
        let verifier = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.unwrap();
            reply(send, 404, status(404, "NotFound"));
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::POST);
            reply(send, 409, status(409, "AlreadyExists"));
            let (_, send) = handle.next_request().await.unwrap();
            reply(send, 403, status(403, "Forbidden"));
        });
        let outcome = ensure_with_key(client.clone(), "ferrolb-system", || vec![1; KEY_LEN])
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::CreatedByOther);
        let err = ensure_with_key(client, "ferrolb-system", || vec![1; KEY_LEN])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to read the Secret ferrolb-system/ferrolb-memberlist"
        );
        verifier.await.unwrap();
    }
}
