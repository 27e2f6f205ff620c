//! `BFDProfile` -> [`Bfd`].

use k8s_openapi::api::core::v1::Secret;

use super::error::{ConfigError, Kind, ObjectRef};
pub use crate::v1alpha1::BFDAuthenticationType;
use crate::v1alpha1::{BFDAuthentication, BFDProfile};

/// Validated BFD settings with defaults applied (RFC 5880 values in milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bfd {
    /// Profile name.
    pub name: String,
    /// Required Min RX Interval, ms (default 300).
    pub receive_interval_ms: u32,
    /// Desired Min TX Interval, ms (default 300).
    pub transmit_interval_ms: u32,
    /// Detect Mult (default 3).
    pub detect_multiplier: u8,
    /// Echo interval, ms (default 50).
    pub echo_interval_ms: u32,
    /// Echo function enabled (default false).
    pub echo_mode: bool,
    /// Passive role: wait for the peer's first packet (default false).
    pub passive_mode: bool,
    /// Minimum incoming TTL for multihop sessions (default 254).
    pub minimum_ttl: u8,
    /// Control packet authentication, with the key read from its Secret.
    pub authentication: Option<BfdAuthentication>,
}

/// Validated `authentication` of a BFDProfile. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct BfdAuthentication {
    pub method: BFDAuthenticationType,
    pub key_id: u8,
    /// The Secret it came from, `namespace/name`.
    pub secret: String,
    /// The key, 1 to 20 bytes.
    pub key: String,
}

impl std::fmt::Debug for BfdAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BfdAuthentication")
            .field("method", &self.method)
            .field("key_id", &self.key_id)
            .field("secret", &self.secret)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .finish()
    }
}

/// Longest BFD SHA1 key (RFC 5880 §4.4: the 20-byte Auth Key/Hash field).
pub const MAX_KEY_LEN: usize = 20;

impl Bfd {
    /// Default values under a name.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        Bfd {
            name: name.into(),
            receive_interval_ms: 300,
            transmit_interval_ms: 300,
            detect_multiplier: 3,
            echo_interval_ms: 50,
            echo_mode: false,
            passive_mode: false,
            minimum_ttl: 254,
            authentication: None,
        }
    }
}

pub(super) fn validate(obj: &BFDProfile, secrets: &[Secret]) -> Result<Bfd, Vec<ConfigError>> {
    let me = ObjectRef::new(Kind::BFDProfile, &obj.metadata);
    let s = &obj.spec;
    let mut errors = Vec::new();
    let mut out = Bfd::with_defaults(me.name.clone());
    let mut check = |field: &str, v: Option<u32>, lo: u32, hi: u32, slot: &mut u32| {
        if let Some(v) = v {
            if (lo..=hi).contains(&v) {
                *slot = v;
            } else {
                errors.push(me.error(
                    format!("spec.{field}"),
                    Some(&v.to_string()),
                    format!("must be between {lo} and {hi}"),
                ));
            }
        }
    };
    check(
        "receiveInterval",
        s.receive_interval,
        10,
        60000,
        &mut out.receive_interval_ms,
    );
    check(
        "transmitInterval",
        s.transmit_interval,
        10,
        60000,
        &mut out.transmit_interval_ms,
    );
    check(
        "echoInterval",
        s.echo_interval,
        10,
        60000,
        &mut out.echo_interval_ms,
    );
    let mut mult = u32::from(out.detect_multiplier);
    check("detectMultiplier", s.detect_multiplier, 2, 255, &mut mult);
    let mut ttl = u32::from(out.minimum_ttl);
    check("minimumTtl", s.minimum_ttl, 1, 254, &mut ttl);
    out.detect_multiplier = u8::try_from(mult).unwrap_or(u8::MAX);
    out.minimum_ttl = u8::try_from(ttl).unwrap_or(u8::MAX);
    out.echo_mode = s.echo_mode.unwrap_or(false);
    out.passive_mode = s.passive_mode.unwrap_or(false);
    if let Some(a) = &s.authentication {
        out.authentication = authentication(&me, a, secrets, &mut errors);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `authentication`: the key ID's range, then the key from its Secret (read only once the
/// rest is well-formed, so that one mistake gives one error), 1 to 20 bytes.
fn authentication(
    me: &ObjectRef,
    a: &BFDAuthentication,
    secrets: &[Secret],
    errors: &mut Vec<ConfigError>,
) -> Option<BfdAuthentication> {
    let Ok(key_id) = u8::try_from(a.key_id) else {
        errors.push(me.error(
            "spec.authentication.keyID",
            Some(&a.key_id.to_string()),
            "must be between 0 and 255",
        ));
        return None;
    };
    let r = &a.password_secret;
    let ns = r.namespace.clone().unwrap_or_else(|| me.namespace.clone());
    let secret = format!("{ns}/{}", r.name);
    let field = "spec.authentication.passwordSecret";
    let key = match super::peer::resolve_secret(secrets, &ns, &r.name) {
        Ok(k) => k,
        Err(m) => {
            errors.push(me.error(field, Some(&secret), m));
            return None;
        }
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        errors.push(me.error(
            field,
            Some(&secret),
            format!(
                "the key in Secret {secret} is {} bytes; BFD SHA1 keys are 1 to {MAX_KEY_LEN} bytes",
                key.len()
            ),
        ));
        return None;
    }
    Some(BfdAuthentication {
        method: a.type_,
        key_id,
        secret,
        key,
    })
}
