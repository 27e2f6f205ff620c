//! Plain input and output types of the allocator. No Kubernetes types: the reconciler
//! converts the validated config and each Service into these. [`Family`] and the address
//! numbering (`ip_to_u128`/`u128_to_ip`) are the validated config's own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::config::parse_range;
pub use ferrolb_crds::config::{Family, IpRange};

/// A Service's identity, `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ServiceKey {
    /// `ServiceKey::new("default", "web")`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Labels of a Service or a Namespace.
pub type Labels = BTreeMap<String, String>;

/// A label selector, evaluated by the caller's implementation (the reconciler wraps the
/// validated config's selectors). The allocator only asks "does it match these labels".
pub trait Selector: Send + Sync + fmt::Debug {
    /// True when the selector matches `labels`.
    fn matches(&self, labels: &Labels) -> bool;
}

/// A simple equality selector (`key=value` for every entry; empty matches everything).
/// Enough for tests and for callers that resolved `matchExpressions` themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchLabels(pub Labels);

impl Selector for MatchLabels {
    fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// `serviceAllocation` of a pool: which Services it serves and with what priority.
#[derive(Clone, Debug, Default)]
pub struct ServiceAllocation {
    /// Lower is preferred; `None` sorts after every number.
    pub priority: Option<i32>,
    /// Namespaces served by name.
    pub namespaces: BTreeSet<String>,
    /// Namespaces served by label. A namespace is served when it is named in `namespaces`
    /// or matches any of these; when both are empty every namespace is served.
    pub namespace_selectors: Vec<Arc<dyn Selector>>,
    /// Service labels; when non-empty, any one must match the Service's labels.
    pub service_selectors: Vec<Arc<dyn Selector>>,
}

/// A pool as the allocator sees it: the validated config of one `IPAddressPool`.
#[derive(Clone, Debug)]
pub struct Pool {
    /// Pool name (unique).
    pub name: String,
    /// Address ranges (validated: one family, start <= end).
    pub ranges: Vec<IpRange>,
    /// Used for automatic allocation; when false only by explicit request (IP or pool pin).
    pub auto_assign: bool,
    /// Skip IPv4 addresses ending in `.0` or `.255` in automatic allocation.
    pub avoid_buggy_ips: bool,
    /// Service selection; `None` serves every Service, with no priority.
    pub service_allocation: Option<ServiceAllocation>,
}

impl Pool {
    /// A pool with `autoAssign: true`, no `avoidBuggyIPs`, no `serviceAllocation`.
    pub fn new(name: impl Into<String>, ranges: Vec<IpRange>) -> Self {
        Self {
            name: name.into(),
            ranges,
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        }
    }

    /// Parses `"192.0.2.0/29"` or `"192.0.2.1-192.0.2.9"` entries into a pool (for tests,
    /// examples and benches; the reconciler passes the validated ranges directly).
    pub fn parse(name: impl Into<String>, addresses: &[&str]) -> Result<Self, String> {
        let ranges = addresses
            .iter()
            .map(|a| parse_range(a).map_err(|e| format!("{a}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self::new(name, ranges))
    }

    /// Sets `autoAssign`.
    pub fn auto_assign(mut self, on: bool) -> Self {
        self.auto_assign = on;
        self
    }

    /// Sets `avoidBuggyIPs`.
    pub fn avoid_buggy_ips(mut self, on: bool) -> Self {
        self.avoid_buggy_ips = on;
        self
    }

    /// Sets `serviceAllocation`.
    pub fn service_allocation(mut self, sa: ServiceAllocation) -> Self {
        self.service_allocation = Some(sa);
        self
    }

    pub(crate) fn priority(&self) -> Option<i32> {
        self.service_allocation.as_ref().and_then(|s| s.priority)
    }
}

/// `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FamilyPolicy {
    /// One address of the primary family.
    #[default]
    SingleStack,
    /// Both families if one pool can serve both, else one.
    PreferDualStack,
    /// Both families from one pool, or fail.
    RequireDualStack,
}

impl fmt::Display for FamilyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FamilyPolicy::SingleStack => "SingleStack",
            FamilyPolicy::PreferDualStack => "PreferDualStack",
            FamilyPolicy::RequireDualStack => "RequireDualStack",
        })
    }
}

/// L4 protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// A Service port, protocol + port number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// Protocol.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
}

impl Port {
    /// `Port::tcp(80)`.
    pub fn tcp(port: u16) -> Self {
        Self {
            protocol: Protocol::Tcp,
            port,
        }
    }

    /// `Port::udp(53)`.
    pub fn udp(port: u16) -> Self {
        Self {
            protocol: Protocol::Udp,
            port,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// What a Service needs to share an IP (`allow-shared-ip`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sharing {
    /// The sharing key (annotation value, non-empty).
    pub key: String,
    /// The Service's ports; two sharers may not use the same protocol+port.
    pub ports: BTreeSet<Port>,
    /// `None` for `externalTrafficPolicy: Cluster`; for `Local`, the Service's pod selector in
    /// a canonical form (e.g. `app=web,tier=front`): `Local` sharers need the same selector.
    pub local_selector: Option<String>,
}

/// Everything the allocator needs to know about one Service.
#[derive(Clone, Debug)]
pub struct Request {
    /// The Service.
    pub service: ServiceKey,
    /// Service labels (for `serviceSelectors`).
    pub labels: Labels,
    /// Labels of the Service's namespace (for `namespaceSelectors`).
    pub namespace_labels: Labels,
    /// Requested addresses (`loadBalancerIPs` annotation or `spec.loadBalancerIP`), at most one
    /// per family.
    pub ips: Vec<IpAddr>,
    /// Pool pin (`address-pool` annotation).
    pub pool: Option<String>,
    /// `spec.ipFamilyPolicy`.
    pub policy: FamilyPolicy,
    /// `spec.ipFamilies`, primary first; empty means `[IPv4]`.
    pub families: Vec<Family>,
    /// `allow-shared-ip`, if set.
    pub sharing: Option<Sharing>,
}

impl Request {
    /// A SingleStack IPv4 request with no labels, pins or sharing.
    pub fn new(service: ServiceKey) -> Self {
        Self {
            service,
            labels: Labels::new(),
            namespace_labels: Labels::new(),
            ips: Vec::new(),
            pool: None,
            policy: FamilyPolicy::SingleStack,
            families: vec![Family::V4],
            sharing: None,
        }
    }

    /// Sets policy and families (primary first).
    pub fn families(mut self, policy: FamilyPolicy, families: &[Family]) -> Self {
        self.policy = policy;
        self.families = families.to_vec();
        self
    }

    /// Requests specific addresses.
    pub fn ips(mut self, ips: &[IpAddr]) -> Self {
        self.ips = ips.to_vec();
        self
    }

    /// Pins a pool.
    pub fn pool(mut self, pool: impl Into<String>) -> Self {
        self.pool = Some(pool.into());
        self
    }

    /// Sets the sharing key and ports.
    pub fn sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = Some(sharing);
        self
    }

    /// Sets Service labels.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }

    /// Sets namespace labels.
    pub fn namespace_labels(mut self, labels: Labels) -> Self {
        self.namespace_labels = labels;
        self
    }
}

/// An assignment read back from `Service.status.loadBalancer.ingress`, for [`restore`].
///
/// [`restore`]: super::Allocator::restore
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The Service.
    pub service: ServiceKey,
    /// Its addresses, at most one per family.
    pub ips: Vec<IpAddr>,
    /// Its sharing key and ports, if it has `allow-shared-ip`.
    pub sharing: Option<Sharing>,
    /// Its pool pin (`address-pool` annotation), if any: a later request with the same pin
    /// keeps the addresses even if a pool edit moved them to another pool.
    pub pool: Option<String>,
}

/// The result of a successful [`allocate`](super::Allocator::allocate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The Service's addresses, primary family first.
    pub ips: Vec<IpAddr>,
    /// The pool of the first address (for the `ip-allocated-from-pool` annotation); `None`
    /// when the kept address is outside every pool.
    pub pool: Option<String>,
    /// False when the Service already had exactly these addresses.
    pub changed: bool,
}

/// An assignment whose address is in no pool (after a pool edit, or restored from a status
/// written under an older config). It stays assigned; the reconciler reports it (Event
/// `IPOutsidePool`, metric).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutsidePool {
    /// The Service.
    pub service: ServiceKey,
    /// The address.
    pub ip: IpAddr,
}

/// Usage of one pool, for `IPAddressPool.status` and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// Pool name.
    pub pool: String,
    /// IPv4 addresses held by at least one Service.
    pub assigned_v4: u64,
    /// IPv6 addresses held by at least one Service.
    pub assigned_v6: u64,
    /// IPv4 addresses still available for automatic allocation (`.0`/`.255` excluded with
    /// `avoidBuggyIPs`).
    pub available_v4: u64,
    /// IPv6 addresses still available, saturating at `u64::MAX` (a /64 has 2^64).
    pub available_v6: u64,
    /// Total IPv4 addresses in the pool's ranges.
    pub total_v4: u128,
    /// Total IPv6 addresses in the pool's ranges (saturating at `u128::MAX`).
    pub total_v6: u128,
}

impl PoolUsage {
    /// Addresses in use, both families.
    pub fn in_use(&self) -> u64 {
        self.assigned_v4.saturating_add(self.assigned_v6)
    }

    /// Total addresses, both families, saturating at `u64::MAX` (for gauges).
    pub fn total(&self) -> u64 {
        u64::try_from(self.total_v4.saturating_add(self.total_v6)).unwrap_or(u64::MAX)
    }
}
