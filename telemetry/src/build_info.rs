//! `ferrolb_build_info{binary,version,revision} 1`: which build is running, for dashboards
//! and for alerting on version skew between controller and speakers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
