//! Config errors: each names the object, the field path and the bad value.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_core::ObjectMeta;

use crate::v1alpha1::{ConfigurationResult, ConfigurationStateStatus, ObjectError};

/// Kind of an object an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `IPAddressPool`.
    IPAddressPool,
    /// `L2Advertisement`.
    L2Advertisement,
    /// `BGPAdvertisement`.
    BGPAdvertisement,
    /// `BGPPeer`.
    BGPPeer,
    /// `Community`.
    Community,
    /// `BFDProfile`.
    BFDProfile,
    /// core `Service`.
    Service,
}

impl Kind {
    /// The Kubernetes kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::IPAddressPool => "IPAddressPool",
            Kind::L2Advertisement => "L2Advertisement",
            Kind::BGPAdvertisement => "BGPAdvertisement",
            Kind::BGPPeer => "BGPPeer",
            Kind::Community => "Community",
            Kind::BFDProfile => "BFDProfile",
            Kind::Service => "Service",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind, namespace and name of an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Kind.
    pub kind: Kind,
    /// Namespace (empty when the object has none, e.g. in a standalone YAML file).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// Reference to the object with this metadata.
    pub fn new(kind: Kind, meta: &ObjectMeta) -> Self {
        ObjectRef {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    /// An error about `field` of this object.
    pub fn error(
        &self,
        field: impl Into<String>,
        value: Option<&str>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            object: self.clone(),
            field: field.into(),
            value: value.map(str::to_string),
            message: message.into(),
            kept_previous: false,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One invalid field of one object:
/// `IPAddressPool ferrolb-system/prod: spec.addresses[2] "192.0.2.5-192.0.2.1": range start after end`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The object.
    pub object: ObjectRef,
    /// Field path, e.g. `spec.addresses[2]`.
    pub field: String,
    /// The offending value, when there is one.
    pub value: Option<String>,
    /// What is wrong.
    pub message: String,
    /// True when the object's last valid version stays in force despite this error.
    pub kept_previous: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.field)?;
        if let Some(v) = &self.value {
            write!(f, " {v:?}")?;
        }
        write!(f, ": {}", self.message)?;
        if self.kept_previous {
            f.write_str(" (last valid version kept)")?;
        }
        Ok(())
    }
}

impl From<&ConfigError> for ObjectError {
    fn from(e: &ConfigError) -> Self {
        ObjectError {
            kind: e.object.kind.as_str().to_string(),
            namespace: e.object.namespace.clone(),
            name: e.object.name.clone(),
            field: e.field.clone(),
            value: e.value.clone(),
            message: e.message.clone(),
            kept_previous: e.kept_previous,
        }
    }
}

// Here, not in `v1alpha1`, so the CRD types need nothing from the config builder.
impl ConfigurationStateStatus {
    /// Status for a validation that produced `errors` (empty = `Valid`), stamped `now`.
    pub fn from_errors(errors: &[ConfigError], now: Option<Time>) -> Self {
        ConfigurationStateStatus {
            result: if errors.is_empty() {
                ConfigurationResult::Valid
            } else {
                ConfigurationResult::Invalid
            },
            error_count: u32::try_from(errors.len()).unwrap_or(u32::MAX),
            error_summary: errors.first().map(ToString::to_string).unwrap_or_default(),
            errors: errors.iter().map(ObjectError::from).collect(),
            last_update: now,
        }
    }
}
