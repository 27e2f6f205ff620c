//! Shared telemetry for ferrolb binaries: logging, `/metrics`, `/healthz`, `/readyz`.
