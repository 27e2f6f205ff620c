//! What a Service asks of ferrolb, parsed in one place: [`ServiceRequest::from_service`].
//!
//! Annotations are read under three spellings: `ferrolb.io/…` and MetalLB's `metallb.io/…` and
//! `metallb.universe.tf/…`. Two spellings with different values are an error naming both.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};

use crate::config::{ConfigError, Family, Kind, Labels, ObjectRef};

/// Our `spec.loadBalancerClass`.
pub const LB_CLASS: &str = "ferrolb.io/lb";
/// Annotation: comma-separated addresses to assign (one per family).
pub const ANNOTATION_LOAD_BALANCER_IPS: &str = "ferrolb.io/loadBalancerIPs";
/// Annotation: the pool to allocate from.
pub const ANNOTATION_ADDRESS_POOL: &str = "ferrolb.io/address-pool";
/// Annotation: sharing key; Services with the same key may share an address.
pub const ANNOTATION_ALLOW_SHARED_IP: &str = "ferrolb.io/allow-shared-ip";
/// Annotation written by the controller: the pool the address came from.
pub const ANNOTATION_ALLOCATED_FROM_POOL: &str = "ferrolb.io/ip-allocated-from-pool";

/// MetalLB prefixes accepted as aliases of `ferrolb.io/`.
pub const ALIAS_PREFIXES: [&str; 2] = ["metallb.io/", "metallb.universe.tf/"];

/// `spec.loadBalancerClass` as it concerns us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LbClass {
    /// No class: ours unless the controller runs with `--lb-class-only`.
    Unset,
    /// `ferrolb.io/lb`.
    Ours,
    /// Another implementation's class: never ours.
    Other(String),
}

/// `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpFamilyPolicy {
    /// One family (default).
    SingleStack,
    /// Both families if possible.
    PreferDualStack,
    /// Both families or nothing.
    RequireDualStack,
}

/// `spec.externalTrafficPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficPolicy {
    /// Any node may receive traffic (default).
    Cluster,
    /// Only nodes with a ready local endpoint.
    Local,
}

/// Transport protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// One Service port as far as IP sharing is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    /// Protocol.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
}

/// Everything the allocator and the speaker need to know about one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRequest {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels (for `serviceSelectors`).
    pub labels: Labels,
    /// `spec.type == LoadBalancer`.
    pub is_load_balancer: bool,
    /// `spec.loadBalancerClass`.
    pub class: LbClass,
    /// Requested addresses: the `loadBalancerIPs` annotation or `spec.loadBalancerIP`; at
    /// most one per family.
    pub requested_ips: Vec<IpAddr>,
    /// The `address-pool` annotation.
    pub pool: Option<String>,
    /// The `allow-shared-ip` annotation (sharing key).
    pub sharing_key: Option<String>,
    /// `spec.ipFamilyPolicy` (default SingleStack).
    pub ip_family_policy: IpFamilyPolicy,
    /// `spec.ipFamilies`, primary first (may be empty before the API server fills it).
    pub ip_families: Vec<Family>,
    /// `spec.clusterIPs` that parse as addresses.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.externalTrafficPolicy` (default Cluster).
    pub external_traffic_policy: TrafficPolicy,
    /// `spec.ports` (protocol + port).
    pub ports: Vec<PortKey>,
    /// `spec.selector` (two `Local` Services may share an address only with equal selectors).
    pub selector: Labels,
    /// Addresses currently in `status.loadBalancer.ingress`.
    pub ingress_ips: Vec<IpAddr>,
    /// The `ip-allocated-from-pool` annotation the controller wrote earlier (any spelling).
    pub allocated_from_pool: Option<String>,
    /// MetalLB spellings found (`metallb.io/address-pool`, ...), for a deprecation Event.
    pub alias_annotations: Vec<String>,
}

/// The annotations a Service request reads (any accepted spelling).
struct Annotations {
    /// `loadBalancerIPs`: the spelling found and its value.
    ips: Option<(String, String)>,
    pool: Option<String>,
    sharing_key: Option<String>,
    allocated_from_pool: Option<String>,
    alias_annotations: Vec<String>,
}

impl Annotations {
    fn read(me: &ObjectRef, svc: &Service, errors: &mut Vec<ConfigError>) -> Annotations {
        let empty = BTreeMap::new();
        let annotations = svc.metadata.annotations.as_ref().unwrap_or(&empty);
        let mut alias_annotations = Vec::new();
        let mut read =
            |name: &str| annotation(me, annotations, name, &mut alias_annotations, errors);
        let ips = read("loadBalancerIPs");
        let pool = read("address-pool").map(|(_, v)| v.trim().to_string());
        let sharing_key = read("allow-shared-ip")
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty());
        // Written by a controller (ours or MetalLB's), so read leniently: first spelling wins.
        let allocated_from_pool = std::iter::once("ferrolb.io/")
            .chain(ALIAS_PREFIXES)
            .find_map(|p| annotations.get(&format!("{p}ip-allocated-from-pool")))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if pool.as_deref() == Some("") {
            errors.push(me.error(
                format!("metadata.annotations[{ANNOTATION_ADDRESS_POOL}]"),
                Some(""),
                "pool name must not be empty",
            ));
        }
        Annotations {
            ips,
            pool,
            sharing_key,
            allocated_from_pool,
            alias_annotations,
        }
    }
}

/// `spec.ipFamilies` that name a family, in order.
fn ip_families(spec: &ServiceSpec) -> Vec<Family> {
    spec.ip_families
        .iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        })
        .collect()
}

/// `spec.clusterIPs` and `spec.clusterIP` that parse, each once.
fn cluster_ips(spec: &ServiceSpec) -> Vec<IpAddr> {
    spec.cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .fold(Vec::new(), |mut v, ip| {
            if !v.contains(&ip) {
                v.push(ip);
            }
            v
        })
}

/// The addresses in `status.loadBalancer.ingress` that parse.
fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse::<IpAddr>().ok())
        .collect()
}

impl ServiceRequest {
    /// Parses a Service. Errors name the annotation or field and the bad value.
    pub fn from_service(svc: &Service) -> Result<Self, Vec<ConfigError>> {
        let me = ObjectRef::new(Kind::Service, &svc.metadata);
        let mut errors = Vec::new();
        let no_spec = ServiceSpec::default();
        let spec = svc.spec.as_ref().unwrap_or(&no_spec);
        let a = Annotations::read(&me, svc, &mut errors);
        let ip_families = ip_families(spec);
        let requested_ips = requested_ips(&me, a.ips.as_ref(), spec, &ip_families, &mut errors);
        let class = match spec.load_balancer_class.as_deref() {
            None | Some("") => LbClass::Unset,
            Some(LB_CLASS) => LbClass::Ours,
            Some(other) => LbClass::Other(other.to_string()),
        };
        let (ip_family_policy, external_traffic_policy) = policies(&me, spec, &mut errors);
        let ports = ports(&me, spec, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ServiceRequest {
            namespace: me.namespace,
            name: me.name,
            labels: svc.metadata.labels.clone().unwrap_or_default(),
            is_load_balancer: spec.type_.as_deref() == Some("LoadBalancer"),
            class,
            requested_ips,
            pool: a.pool,
            sharing_key: a.sharing_key,
            ip_family_policy,
            ip_families,
            cluster_ips: cluster_ips(spec),
            external_traffic_policy,
            ports,
            selector: spec.selector.clone().unwrap_or_default(),
            ingress_ips: ingress_ips(svc),
            allocated_from_pool: a.allocated_from_pool,
            alias_annotations: a.alias_annotations,
        })
    }

    /// Whether ferrolb handles this Service: `type: LoadBalancer` and our class, or no class
    /// unless `lb_class_only`.
    pub fn is_ours(&self, lb_class_only: bool) -> bool {
        self.is_load_balancer
            && match &self.class {
                LbClass::Ours => true,
                LbClass::Unset => !lb_class_only,
                LbClass::Other(_) => false,
            }
    }

    /// Services sharing an address must have equal backend keys: empty for `Cluster`, the
    /// sorted `key=value` selector for `Local` (MetalLB's rule).
    pub fn backend_key(&self) -> String {
        match self.external_traffic_policy {
            TrafficPolicy::Cluster => String::new(),
            TrafficPolicy::Local => self
                .selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Reads annotation `ferrolb.io/<suffix>` or an alias spelling. Returns (spelling, value).
fn annotation(
    me: &ObjectRef,
    annotations: &BTreeMap<String, String>,
    suffix: &str,
    aliases_used: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, String)> {
    let ours = format!("ferrolb.io/{suffix}");
    let mut found: Vec<(String, String)> = Vec::new();
    if let Some(v) = annotations.get(&ours) {
        found.push((ours.clone(), v.clone()));
    }
    for prefix in ALIAS_PREFIXES {
        let key = format!("{prefix}{suffix}");
        if let Some(v) = annotations.get(&key) {
            aliases_used.push(key.clone());
            found.push((key, v.clone()));
        }
    }
    let first = found.first()?.clone();
    for (key, value) in &found[1..] {
        if value.trim() != first.1.trim() {
            errors.push(me.error(
                format!("metadata.annotations[{key}]"),
                Some(value),
                format!("conflicts with annotation {} = {:?}", first.0, first.1),
            ));
        }
    }
    Some(first)
}

/// The requested addresses: the `loadBalancerIPs` annotation (`(key, text)`) or
/// `spec.loadBalancerIP`, at most one per family, each in the Service's `ipFamilies`.
fn requested_ips(
    me: &ObjectRef,
    ips_annotation: Option<&(String, String)>,
    spec: &ServiceSpec,
    ip_families: &[Family],
    errors: &mut Vec<ConfigError>,
) -> Vec<IpAddr> {
    let mut requested_ips = Vec::new();
    if let Some((key, text)) = ips_annotation {
        let field = format!("metadata.annotations[{key}]");
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<IpAddr>() {
                Ok(ip) => requested_ips.push(ip),
                Err(_) => {
                    errors.push(me.error(&field, Some(part), "not an IP address"));
                }
            }
        }
        if requested_ips.len() > 2 {
            errors.push(me.error(
                &field,
                Some(text),
                "at most two addresses, one IPv4 and one IPv6",
            ));
        } else if requested_ips.len() == 2
            && Family::of(requested_ips[0]) == Family::of(requested_ips[1])
        {
            errors.push(me.error(
                &field,
                Some(text),
                "two addresses must be of different families",
            ));
        }
    }
    if let Some(lb_ip) = spec
        .load_balancer_ip
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match lb_ip.parse::<IpAddr>() {
            Err(_) => {
                errors.push(me.error("spec.loadBalancerIP", Some(lb_ip), "not an IP address"))
            }
            Ok(ip) => match ips_annotation {
                None => requested_ips.push(ip),
                Some((key, _)) if requested_ips != [ip] => {
                    errors.push(me.error(
                        "spec.loadBalancerIP",
                        Some(lb_ip),
                        format!("conflicts with annotation {key}; set only one of them"),
                    ));
                }
                Some(_) => {}
            },
        }
    }
    if !ip_families.is_empty() {
        for ip in &requested_ips {
            if !ip_families.contains(&Family::of(*ip)) {
                errors.push(me.error(
                    "spec.ipFamilies",
                    Some(&ip.to_string()),
                    format!(
                        "requested address is {} but the Service's ipFamilies do not include it",
                        Family::of(*ip)
                    ),
                ));
            }
        }
    }
    requested_ips
}

/// `spec.ipFamilyPolicy` and `spec.externalTrafficPolicy` (defaults when unset).
fn policies(
    me: &ObjectRef,
    spec: &ServiceSpec,
    errors: &mut Vec<ConfigError>,
) -> (IpFamilyPolicy, TrafficPolicy) {
    let ip_family_policy = match spec.ip_family_policy.as_deref() {
        None | Some("SingleStack") => IpFamilyPolicy::SingleStack,
        Some("PreferDualStack") => IpFamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => IpFamilyPolicy::RequireDualStack,
        Some(other) => {
            errors.push(me.error(
                "spec.ipFamilyPolicy",
                Some(other),
                "must be SingleStack, PreferDualStack or RequireDualStack",
            ));
            IpFamilyPolicy::SingleStack
        }
    };
    let external_traffic_policy = match spec.external_traffic_policy.as_deref() {
        None | Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(other) => {
            errors.push(me.error(
                "spec.externalTrafficPolicy",
                Some(other),
                "must be Cluster or Local",
            ));
            TrafficPolicy::Cluster
        }
    };
    (ip_family_policy, external_traffic_policy)
}

/// `spec.ports` as (protocol, port); a bad entry is an error naming `spec.ports[i]`.
fn ports(me: &ObjectRef, spec: &ServiceSpec, errors: &mut Vec<ConfigError>) -> Vec<PortKey> {
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let protocol = match p.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(other) => {
                errors.push(me.error(
                    format!("spec.ports[{i}].protocol"),
                    Some(other),
                    "must be TCP, UDP or SCTP",
                ));
                continue;
            }
        };
        match u16::try_from(p.port).ok().filter(|p| *p != 0) {
            Some(port) => ports.push(PortKey { protocol, port }),
            None => errors.push(me.error(
                format!("spec.ports[{i}].port"),
                Some(&p.port.to_string()),
                "port must be between 1 and 65535",
            )),
        }
    }
    ports
}
