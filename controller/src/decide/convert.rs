//! Conversions from the validated config and the parsed Service to the allocator's types.

use std::sync::Arc;

use ferrolb_crds::config::SelectorSet;
use ferrolb_crds::service::{
    IpFamilyPolicy, Protocol as SvcProtocol, ServiceRequest, TrafficPolicy,
};

use super::Core;
use crate::allocator::{
    Family, FamilyPolicy, Pool, Port, Protocol, Request, Selector, ServiceAllocation, ServiceKey,
    Sharing,
};

impl Core {
    /// Converts the parsed Service into the allocator's request.
    pub fn to_request(&self, req: &ServiceRequest) -> Request {
        let families: Vec<Family> = if !req.ip_families.is_empty() {
            req.ip_families.clone()
        } else if !req.cluster_ips.is_empty() {
            req.cluster_ips.iter().map(|ip| Family::of(*ip)).collect()
        } else {
            // Standalone Services have no clusterIP: IPv4 unless ipFamilies says otherwise.
            vec![Family::V4]
        };
        let policy = match req.ip_family_policy {
            IpFamilyPolicy::SingleStack => FamilyPolicy::SingleStack,
            IpFamilyPolicy::PreferDualStack => FamilyPolicy::PreferDualStack,
            IpFamilyPolicy::RequireDualStack => FamilyPolicy::RequireDualStack,
        };
        let sharing = req.sharing_key.as_ref().map(|k| Sharing {
            key: k.clone(),
            ports: req
                .ports
                .iter()
                .map(|p| Port {
                    protocol: match p.protocol {
                        SvcProtocol::Tcp => Protocol::Tcp,
                        SvcProtocol::Udp => Protocol::Udp,
                        SvcProtocol::Sctp => Protocol::Sctp,
                    },
                    port: p.port,
                })
                .collect(),
            local_selector: match req.external_traffic_policy {
                TrafficPolicy::Cluster => None,
                TrafficPolicy::Local => Some(req.backend_key()),
            },
        });
        Request {
            service: ServiceKey::new(req.namespace.clone(), req.name.clone()),
            labels: req.labels.clone(),
            namespace_labels: self
                .namespace_labels
                .get(&req.namespace)
                .cloned()
                .unwrap_or_default(),
            ips: req.requested_ips.clone(),
            pool: req.pool.clone(),
            policy,
            families,
            sharing,
        }
    }
}

/// A validated selector set as the allocator's [`Selector`].
#[derive(Debug)]
struct Sel(SelectorSet);

impl Selector for Sel {
    fn matches(&self, labels: &crate::allocator::Labels) -> bool {
        self.0.matches(labels)
    }
}

/// The validated pool as the allocator's [`Pool`].
pub fn to_alloc_pool(p: &ferrolb_crds::config::Pool) -> Pool {
    let service_allocation = p.allocation.as_ref().map(|a| ServiceAllocation {
        priority: a.priority.and_then(|x| i32::try_from(x).ok()),
        namespaces: a.namespaces.clone(),
        namespace_selectors: if a.namespace_selectors.is_empty() {
            Vec::new()
        } else {
            vec![Arc::new(Sel(a.namespace_selectors.clone())) as Arc<dyn Selector>]
        },
        service_selectors: if a.service_selectors.is_empty() {
            Vec::new()
        } else {
            vec![Arc::new(Sel(a.service_selectors.clone())) as Arc<dyn Selector>]
        },
    });
    Pool {
        name: p.name.clone(),
        ranges: p.ranges.clone(),
        auto_assign: p.auto_assign,
        avoid_buggy_ips: p.avoid_buggy_ips,
        service_allocation,
    }
}
