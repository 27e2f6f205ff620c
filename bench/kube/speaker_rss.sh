#!/usr/bin/env bash
# Speaker memory on a real API server: N LoadBalancer Services (default 10000) with their
# EndpointSlices and status IPs, announced by one speaker (release build) to 4 BGP peers (FRR
# in the lab, four sessions from four source addresses). Prints VmRSS and VmHWM of the
# speaker once every peer has all N prefixes. Root + kube-apiserver assets.
#
#   bench/kube/speaker_rss.sh [N]
#
# Target (issue #12): RSS < 25 MB with 10k Services and 4 peers.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-0}
if [ -z "${KUBEBUILDER_ASSETS:-}" ] && [ -x ../shared/k8s/envtest-assets ]; then
    KUBEBUILDER_ASSETS=$(../shared/k8s/envtest-assets)
    export KUBEBUILDER_ASSETS
fi
cargo build -q --release -p ferrolb-speaker --bin ferrolb-speaker
export FERROLB_SPEAKER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/ferrolb-speaker"
export FERROLB_BENCH_SERVICES=${1:-10000}
export FERROLB_REQUIRE_NETNS=1 FERROLB_REQUIRE_KUBE=1
cargo test -q -p ferrolb-tests --test kube_speaker_rss -- --ignored --nocapture 2>&1 |
    grep -E '^speaker_rss|panicked|FAILED|test result'
