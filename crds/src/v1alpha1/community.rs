//! `Community`: named BGP community values.

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Aliases for BGP communities, usable by name in `BGPAdvertisement.spec.communities`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "Community",
    plural = "communities",
    namespaced,
    status = "CommunityStatus",
    shortname = "lbcommunity",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CommunitySpec {
    /// The aliases; names are unique across all `Community` objects.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub communities: Vec<CommunityAlias>,
}

/// One alias.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CommunityAlias {
    /// Alias name, e.g. `no-export-to-transit`.
    #[schemars(length(max = 64))]
    pub name: String,
    /// `65000:100` or `large:1:2:3`.
    #[schemars(
        length(max = 64),
        regex(pattern = r"^([0-9]{1,5}:[0-9]{1,5}|large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10})$")
    )]
    #[schemars(extend("x-kubernetes-validations" = crate::value::CommunityValue::cel_validations()))]
    pub value: String,
}

/// Empty for now.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CommunityStatus {}
