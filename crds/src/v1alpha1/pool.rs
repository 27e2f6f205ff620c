//! `IPAddressPool`: the addresses ferrolb may hand out to Services.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The CEL rules of each `addresses` entry (defined with the config's range parser).
fn address_items_rules(schema: &mut schemars::Schema) {
    if let Some(items) = schema.get_mut("items").and_then(|i| i.as_object_mut()) {
        items.insert(
            "x-kubernetes-validations".into(),
            crate::value::address_cel_validations(),
        );
    }
}

/// A set of addresses (CIDRs and `start-end` ranges, IPv4 and/or IPv6) that ferrolb assigns to
/// `type: LoadBalancer` Services. Ranges may not overlap within a pool or across pools.
///
/// ```yaml
/// apiVersion: ferrolb.io/v1alpha1
/// kind: IPAddressPool
/// metadata: { name: prod, namespace: ferrolb-system }
/// spec:
///   addresses: ["192.0.2.0/28", "198.51.100.10-198.51.100.20", "2001:db8::/120"]
/// ```
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "IPAddressPool",
    plural = "ipaddresspools",
    namespaced,
    status = "IPAddressPoolStatus",
    shortname = "lbpool",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    printcolumn = r#"{"name":"Auto Assign","type":"boolean","jsonPath":".spec.autoAssign"}"#,
    printcolumn = r#"{"name":"Assigned IPv4","type":"integer","jsonPath":".status.assignedIPv4"}"#,
    printcolumn = r#"{"name":"Available IPv4","type":"integer","jsonPath":".status.availableIPv4"}"#,
    printcolumn = r#"{"name":"Assigned IPv6","type":"integer","jsonPath":".status.assignedIPv6"}"#,
    printcolumn = r#"{"name":"Available IPv6","type":"integer","jsonPath":".status.availableIPv6"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolSpec {
    /// CIDRs (`192.0.2.0/24`, `2001:db8::/120`) and inclusive ranges (`192.0.2.10-192.0.2.20`).
    /// A range must not mix families and its start must not be after its end.
    #[schemars(length(min = 1, max = 128), inner(length(max = 100)))]
    #[schemars(transform = address_items_rules)]
    pub addresses: Vec<String>,

    /// Whether the pool is used for Services that do not ask for it (by IP or by the
    /// `ferrolb.io/address-pool` annotation). Default `true` (filled in by the API server, so
    /// the AUTO ASSIGN column shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub auto_assign: Option<bool>,

    /// Skip IPv4 addresses ending in `.0` and `.255` (some old clients drop them). Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "avoidBuggyIPs")]
    pub avoid_buggy_ips: Option<bool>,

    /// Restricts the pool to some Services, and orders pools for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// Which Services may take addresses from a pool, and the pool's precedence for them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Lower values are tried first; pools without a priority come last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces (by their labels) whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services (by their labels) that may use the pool; any one selector must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// Address usage, written by the controller. IPv6 counts saturate at `i64::MAX`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolStatus {
    /// IPv4 addresses assigned to Services.
    #[serde(default, rename = "assignedIPv4")]
    pub assigned_ipv4: i64,
    /// IPv6 addresses assigned to Services.
    #[serde(default, rename = "assignedIPv6")]
    pub assigned_ipv6: i64,
    /// IPv4 addresses still free.
    #[serde(default, rename = "availableIPv4")]
    pub available_ipv4: i64,
    /// IPv6 addresses still free (saturates at `i64::MAX`).
    #[serde(default, rename = "availableIPv6")]
    pub available_ipv6: i64,
}

impl IPAddressPoolStatus {
    /// Status from exact counts; each count saturates at `i64::MAX` (an IPv6 /64 has 2^64
    /// addresses, more than the field can hold).
    pub fn from_counts(
        assigned_v4: u128,
        available_v4: u128,
        assigned_v6: u128,
        available_v6: u128,
    ) -> Self {
        let sat = |n: u128| i64::try_from(n).unwrap_or(i64::MAX);
        IPAddressPoolStatus {
            assigned_ipv4: sat(assigned_v4),
            assigned_ipv6: sat(assigned_v6),
            available_ipv4: sat(available_v4),
            available_ipv6: sat(available_v6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_saturate() {
        let s = IPAddressPoolStatus::from_counts(3, 13, 1, 1u128 << 64);
        assert_eq!(
            (s.assigned_ipv4, s.available_ipv4, s.assigned_ipv6),
            (3, 13, 1)
        );
        assert_eq!(s.available_ipv6, i64::MAX);
    }
}
