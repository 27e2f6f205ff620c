//! `ConfigurationState`: whether the configuration a component runs with is valid.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Written by the controller (name `controller`) and by each speaker (name `speaker-<node>`):
/// the result of validating the ferrolb objects, with one entry per error, so that nobody needs
/// logs to learn why an object is ignored.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "ConfigurationState",
    plural = "configurationstates",
    namespaced,
    status = "ConfigurationStateStatus",
    shortname = "configstate",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    printcolumn = r#"{"name":"Result","type":"string","jsonPath":".status.result"}"#,
    printcolumn = r#"{"name":"Errors","type":"integer","jsonPath":".status.errorCount"}"#,
    printcolumn = r#"{"name":"Summary","type":"string","jsonPath":".status.errorSummary"}"#,
    printcolumn = r#"{"name":"Last Update","type":"date","jsonPath":".status.lastUpdate"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateSpec {
    /// `controller` or `speaker`.
    #[serde(default)]
    pub component: String,
    /// Node name, for speakers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
}

/// Result of the last validation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateStatus {
    /// `Valid` when no object has an error.
    pub result: ConfigurationResult,
    /// Number of `errors`.
    #[serde(default)]
    pub error_count: u32,
    /// The first error, for the printer column.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_summary: String,
    /// One entry per error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ObjectError>,
    /// When this status was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<Time>,
}

/// Validation result.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConfigurationResult {
    /// Not validated yet.
    #[default]
    Unknown,
    /// Every object is valid.
    Valid,
    /// At least one object is invalid (and ignored, or kept at its last valid version).
    Invalid,
}

/// One error, naming the object and field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectError {
    /// Kind of the object, e.g. `IPAddressPool`.
    pub kind: String,
    /// Namespace of the object.
    #[serde(default)]
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Field path, e.g. `spec.addresses[2]`.
    #[serde(default)]
    pub field: String,
    /// The offending value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Whether the last valid version of the object is still in force.
    #[serde(default)]
    pub kept_previous: bool,
}
