//! `L2Advertisement`: announce pool addresses with ARP/NDP from one node.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Announces the addresses of some pools on the local L2 segment: one elected node answers
/// ARP (IPv4) and NDP (IPv6) for each Service IP, another takes over when it fails.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "L2Advertisement",
    plural = "l2advertisements",
    namespaced,
    status = "L2AdvertisementStatus",
    shortname = "l2adv",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    printcolumn = r#"{"name":"Pools","type":"string","jsonPath":".spec.ipAddressPools"}"#,
    printcolumn = r#"{"name":"Interfaces","type":"string","jsonPath":".spec.interfaces"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools by name. With `ipAddressPoolSelectors` also empty: every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    /// Pools by their labels. With `ipAddressPools` also empty: every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce; empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to answer and send gratuitous packets on; empty: every interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 15)))]
    pub interfaces: Vec<String>,
    /// Services (by their labels) this advertisement applies to; empty: every Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
    /// Soft placement: weights of matching entries are summed over all applicable
    /// advertisements, and the highest total wins the election.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_node_selectors: Vec<PreferredNodeSelector>,
}

/// One weighted node preference of an [`L2AdvertisementSpec`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferredNodeSelector {
    /// 1..100.
    #[schemars(range(min = 1, max = 100))]
    pub weight: i32,
    /// Nodes that get `weight`.
    pub preference: LabelSelector,
}

/// Empty for now; errors are reported in `ConfigurationState`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct L2AdvertisementStatus {}
