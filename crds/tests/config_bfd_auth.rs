//! `BFDProfile.authentication`: the key comes from a Secret (the same resolution as
//! `BGPPeer.passwordSecret`); a missing or unusable Secret names the profile and the Secret,
//! and the profile (with the peers that use it) keeps its last good version, so BFD never
//! falls back to unauthenticated.

mod common;

use common::*;
use ferrolb_crds::Config;
use ferrolb_crds::config::{BFDAuthenticationType, Kind};

fn profile(auth: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: BFDProfile\nmetadata: {{name: fast, namespace: ferrolb-system}}\nspec:\n  receiveInterval: 100\n{auth}"
    )
}

const AUTH: &str =
    "  authentication: {type: MeticulousKeyedSHA1, keyID: 7, passwordSecret: {name: bfd-key}}\n";

fn secret(name: &str, password: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: ferrolb-system}}\ntype: kubernetes.io/basic-auth\nstringData: {{password: \"{password}\"}}\n"
    )
}

fn peer() -> String {
    "---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: tor, namespace: ferrolb-system}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast}\n".to_string()
}

#[test]
fn authentication_resolves_its_secret() {
    let out = build(&(profile(AUTH) + &secret("bfd-key", "rack-7-secret") + &peer()));
    no_errors(&out);
    let a = out.config.bfd_profiles["fast"]
        .authentication
        .clone()
        .expect("authentication");
    assert_eq!(a.method, BFDAuthenticationType::MeticulousKeyedSha1);
    assert_eq!((a.key_id, a.key.as_str()), (7, "rack-7-secret"));
    assert_eq!(a.secret, "ferrolb-system/bfd-key");
    assert!(
        !format!("{a:?}").contains("rack-7-secret"),
        "Debug shows the key"
    );
    let peer_auth = out.config.peers["tor"].bfd.as_ref().unwrap();
    assert_eq!(peer_auth.authentication.as_ref(), Some(&a));
    // Keyed SHA1, key ID 0 (RFC 5880 allows any 8-bit ID).
    let keyed = "  authentication: {type: KeyedSHA1, keyID: 0, passwordSecret: {name: bfd-key}}\n";
    let out = build(&(profile(keyed) + &secret("bfd-key", "k")));
    no_errors(&out);
    let a = out.config.bfd_profiles["fast"]
        .authentication
        .clone()
        .unwrap();
    assert_eq!((a.method, a.key_id), (BFDAuthenticationType::KeyedSha1, 0));
}

#[test]
fn missing_secret_names_profile_and_secret() {
    let out = build(&(profile(AUTH) + &peer()));
    let e = out
        .errors
        .iter()
        .find(|e| e.object.kind == Kind::BFDProfile)
        .expect("a BFDProfile error");
    assert_eq!(e.field, "spec.authentication.passwordSecret");
    assert_eq!(
        e.to_string(),
        "BFDProfile ferrolb-system/fast: spec.authentication.passwordSecret \"ferrolb-system/bfd-key\": Secret not found"
    );
    // No valid profile: the peer is refused too, never run without authentication.
    assert!(!out.config.bfd_profiles.contains_key("fast"));
    assert!(!out.config.peers.contains_key("tor"));
}

#[test]
fn key_longer_than_20_bytes_or_empty_is_refused() {
    for key in ["123456789012345678901", ""] {
        let out = build(&(profile(AUTH) + &secret("bfd-key", key)));
        one_error(
            &out,
            Kind::BFDProfile,
            "fast",
            "spec.authentication.passwordSecret",
            Some("ferrolb-system/bfd-key"),
            "BFD SHA1 keys are 1 to 20 bytes",
        );
    }
    // 20 bytes is the most that fits.
    no_errors(&build(
        &(profile(AUTH) + &secret("bfd-key", "12345678901234567890")),
    ));
}

#[test]
fn secret_of_another_type_is_refused() {
    let yaml = profile(AUTH)
        + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: bfd-key, namespace: ferrolb-system}\ntype: Opaque\nstringData: {password: x}\n";
    one_error(
        &build(&yaml),
        Kind::BFDProfile,
        "fast",
        "spec.authentication.passwordSecret",
        Some("ferrolb-system/bfd-key"),
        "kubernetes.io/basic-auth",
    );
}

#[test]
fn losing_the_secret_keeps_the_last_good_profile_for_its_peers() {
    let good = build(&(profile(AUTH) + &secret("bfd-key", "rack-7-secret") + &peer()));
    no_errors(&good);
    let gone = Config::build(&res(&(profile(AUTH) + &peer())), Some(&good.config));
    let e = one_error(
        &gone,
        Kind::BFDProfile,
        "fast",
        "spec.authentication.passwordSecret",
        Some("ferrolb-system/bfd-key"),
        "Secret not found",
    );
    assert!(e.kept_previous, "{e}");
    assert_eq!(
        gone.config.bfd_profiles["fast"],
        good.config.bfd_profiles["fast"]
    );
    assert_eq!(gone.config.peers["tor"], good.config.peers["tor"]);
    assert!(
        gone.config.peers["tor"]
            .bfd
            .as_ref()
            .is_some_and(|b| b.authentication.is_some())
    );
}
