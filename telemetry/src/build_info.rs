//! `ferrolb_build_info{binary,version,revision} 1`: which build is running, for dashboards
//! and for alerting on version skew between controller and speakers; `ferrolb_ready{binary}`:
//! what `/readyz` answers, for alerts (a kubelet probe is not visible to Prometheus).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Health;

/// The git revision the binaries were built from: the `FERROLB_REVISION` environment
/// variable at compile time (`scripts/build-image.sh` sets it), `unknown` otherwise.
pub const REVISION: &str = match option_env!("FERROLB_REVISION") {
    Some(r) => r,
    None => "unknown",
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    binary: String,
    version: String,
    revision: String,
}

/// Registers `ferrolb_build_info` (always 1) for `binary` at `version` (the binary's
/// `CARGO_PKG_VERSION`) and [`REVISION`].
pub fn register_build_info(registry: &mut Registry, binary: &str, version: &str) {
    let family = Family::<BuildLabels, Gauge>::default();
    family
        .get_or_create(&BuildLabels {
            binary: binary.to_string(),
            version: version.to_string(),
            revision: REVISION.to_string(),
        })
        .set(1);
    registry.register(
        "ferrolb_build_info",
        "Build of the running binary (always 1): binary, version, git revision",
        family,
    );
}

/// `ferrolb_ready{binary}`: 1 while `health` is ready, read at each scrape.
#[derive(Debug)]
struct Ready {
    binary: String,
    health: Health,
}

impl Collector for Ready {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let g = ConstGauge::new(i64::from(self.health.is_ready()));
        let mut m = enc.encode_descriptor(
            "ferrolb_ready",
            "1 while /readyz answers 200 (synced and serving)",
            None,
            g.metric_type(),
        )?;
        let labels = [("binary", self.binary.as_str())];
        g.encode(m.encode_family(&labels)?)
    }
}

/// Registers `ferrolb_ready{binary}` for `health`.
pub fn register_ready(registry: &mut Registry, binary: &str, health: Health) {
    registry.register_collector(Box::new(Ready {
        binary: binary.to_string(),
        health,
    }));
}
