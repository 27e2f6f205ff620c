//! [`SlimService`]: a Service as the leader keeps it in its watch cache, only the fields the
//! controller decides on, in compact form.
//!
//! Measured with `bench/kube/heap.sh controller 2000`: the whole k8s-openapi `Service` in
//! kube-runtime's store was ~2.4 KiB per Service, the largest part of the controller's heap
//! (`ServiceSpec` alone is ~30 inline `Option`s, every label and annotation map a B-tree node
//! of ~0.5 KiB). The store keeps this type instead; [`SlimService::to_service`] builds the
//! `Service` the decision reads, for the moment of one reconcile.
//!
//! It is the record of the leader's Service store ([`ferrolb_cluster::kube::RecordStore`],
//! keyed by `namespace/name`): no `ObjectMeta` (~0.4 KiB inline) and no kube-runtime
//! `ObjectRef` key per Service, only the key, the UID and the resourceVersion.

use std::collections::BTreeMap;

use ferrolb_cluster::kube::{Keyed, LAST_APPLIED};
use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::Deserialize;

use crate::allocator::ServiceKey;
use crate::sink::CONDITION_TYPE;

/// Key/value pairs (labels, annotations, selector) in a boxed slice: no spare capacity.
type Pairs = Box<[(String, String)]>;

/// One `spec.ports` entry as read: `(protocol, port)`.
type Port = (Option<String>, i32);

/// What the controller reads of a Service: its identity (namespace, name, UID,
/// resourceVersion), labels, annotations (without `kubectl apply`'s copy), the spec fields of
/// [`ferrolb_crds::service::ServiceRequest`], and of the status the ingress addresses and the
/// controller's own condition.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "Service")]
pub struct SlimService {
    /// `namespace/name`.
    key: Box<str>,
    /// Where the name starts in `key` (after the `/`).
    name_at: usize,
    uid: Option<Box<str>>,
    resource_version: Option<Box<str>>,
    labels: Option<Pairs>,
    annotations: Option<Pairs>,
    spec: Option<SlimSpec>,
    ingress_ips: Option<Box<[Option<String>]>>,
    condition: Option<Box<Condition>>,
}

#[derive(Clone, Debug)]
struct SlimSpec {
    type_: Option<String>,
    load_balancer_class: Option<String>,
    load_balancer_ip: Option<String>,
    ip_families: Option<Box<[String]>>,
    ip_family_policy: Option<String>,
    external_traffic_policy: Option<String>,
    /// `(protocol, port)` in order (errors name `spec.ports[i]`).
    ports: Option<Box<[Port]>>,
    selector: Option<Pairs>,
    cluster_ip: Option<String>,
    cluster_ips: Option<Box<[String]>>,
}

fn pairs(m: Option<BTreeMap<String, String>>) -> Option<Pairs> {
    m.map(|m| m.into_iter().collect())
}

fn map(p: &Option<Pairs>) -> Option<BTreeMap<String, String>> {
    p.as_ref().map(|p| p.iter().cloned().collect())
}

impl From<Service> for SlimService {
    fn from(s: Service) -> SlimService {
        let m = s.metadata;
        let annotations = m.annotations.map(|mut a| {
            a.remove(LAST_APPLIED);
            a
        });
        let spec = s.spec.map(|sp| SlimSpec {
            type_: sp.type_,
            load_balancer_class: sp.load_balancer_class,
            load_balancer_ip: sp.load_balancer_ip,
            ip_families: sp.ip_families.map(Vec::into_boxed_slice),
            ip_family_policy: sp.ip_family_policy,
            external_traffic_policy: sp.external_traffic_policy,
            ports: sp
                .ports
                .map(|ps| ps.into_iter().map(|p| (p.protocol, p.port)).collect()),
            selector: pairs(sp.selector),
            cluster_ip: sp.cluster_ip,
            cluster_ips: sp.cluster_ips.map(Vec::into_boxed_slice),
        });
        let (ingress_ips, condition) = match s.status {
            Some(st) => (
                st.load_balancer
                    .and_then(|lb| lb.ingress)
                    .map(|list| list.into_iter().map(|i| i.ip).collect()),
                st.conditions
                    .and_then(|cs| cs.into_iter().find(|c| c.type_ == CONDITION_TYPE))
                    .map(Box::new),
            ),
            None => (None, None),
        };
        let namespace = m.namespace.unwrap_or_default();
        SlimService {
            name_at: namespace.len() + 1,
            key: format!("{namespace}/{}", m.name.unwrap_or_default()).into(),
            uid: m.uid.map(String::into_boxed_str),
            resource_version: m.resource_version.map(String::into_boxed_str),
            labels: pairs(m.labels),
            annotations: pairs(annotations),
            spec,
            ingress_ips,
            condition,
        }
    }
}

impl Keyed for SlimService {
    fn key(&self) -> &str {
        &self.key
    }
}

impl SlimService {
    /// The namespace (empty if the object had none: the API server always sends one).
    pub fn namespace(&self) -> &str {
        &self.key[..self.name_at - 1]
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.key[self.name_at..]
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }

    /// The allocator's key of this Service.
    pub fn service_key(&self) -> ServiceKey {
        ServiceKey::new(self.namespace(), self.name())
    }

    /// The Service the decision reads (every field it reads, as the API server sent it).
    pub fn to_service(&self) -> Service {
        let spec = self.spec.as_ref().map(|sp| ServiceSpec {
            type_: sp.type_.clone(),
            load_balancer_class: sp.load_balancer_class.clone(),
            load_balancer_ip: sp.load_balancer_ip.clone(),
            ip_families: sp.ip_families.as_ref().map(|f| f.to_vec()),
            ip_family_policy: sp.ip_family_policy.clone(),
            external_traffic_policy: sp.external_traffic_policy.clone(),
            ports: sp.ports.as_ref().map(|ps| {
                ps.iter()
                    .map(|(protocol, port)| ServicePort {
                        protocol: protocol.clone(),
                        port: *port,
                        ..ServicePort::default()
                    })
                    .collect()
            }),
            selector: map(&sp.selector),
            cluster_ip: sp.cluster_ip.clone(),
            cluster_ips: sp.cluster_ips.as_ref().map(|c| c.to_vec()),
            ..ServiceSpec::default()
        });
        let status =
            (self.ingress_ips.is_some() || self.condition.is_some()).then(|| ServiceStatus {
                load_balancer: self.ingress_ips.as_ref().map(|ips| LoadBalancerStatus {
                    ingress: Some(
                        ips.iter()
                            .map(|ip| LoadBalancerIngress {
                                ip: ip.clone(),
                                ..LoadBalancerIngress::default()
                            })
                            .collect(),
                    ),
                }),
                conditions: self.condition.as_ref().map(|c| vec![(**c).clone()]),
            });
        Service {
            metadata: ObjectMeta {
                name: Some(self.name().to_string()),
                namespace: (!self.namespace().is_empty()).then(|| self.namespace().to_string()),
                uid: self.uid.as_deref().map(str::to_string),
                resource_version: self.resource_version.as_deref().map(str::to_string),
                labels: map(&self.labels),
                annotations: map(&self.annotations),
                ..ObjectMeta::default()
            },
            spec,
            status,
        }
    }
}

#[cfg(test)]
mod tests;
