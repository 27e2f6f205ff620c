#!/usr/bin/env bash
# The controller on a real kube-apiserver v1.32 + etcd (tests/src/kube_env.rs): N Services
# (default 10,000) created as fast as the API server takes them by TASKS client tasks
# (default 64), the release controller running as its ServiceAccount.
#
#   bash bench/kube/run.sh [N] [TASKS]          # ~2-5 min on 2 cores, mostly the API server
#
# Prints one line: create time and rate; time from the last create until every Service has an
# address (seen by a watch in the driver); the controller's status writes per Service, other
# Service writes, Events and pool-status writes (counted in the API server's audit log, by the
# controller's ServiceAccount); the controller's RSS after start (idle), after allocation, and
# its peak (VmHWM). Assets: $KUBEBUILDER_ASSETS, else prepared from ../shared/k8s.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
N=${1:-10000}
TASKS=${2:-64}
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
    if [ -x "$ROOT/../shared/k8s/envtest-assets" ]; then
        KUBEBUILDER_ASSETS=$("$ROOT/../shared/k8s/envtest-assets" | tail -1)
        export KUBEBUILDER_ASSETS
    else
        echo "set KUBEBUILDER_ASSETS (kube-apiserver, etcd)" >&2
        exit 1
    fi
fi
export CARGO_PROFILE_DEV_DEBUG=0
cargo build -q --release -p ferrolb-controller --bin ferrolb-controller
cargo build -q -p ferrolb-tests --example kube_controller_bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
echo "load before: $(cat /proc/loadavg)" >&2
FERROLB_TEST_CONTROLLER_BIN="$TARGET/release/ferrolb-controller" \
    timeout 900 "$TARGET/debug/examples/kube_controller_bench" "$N" "$TASKS"
echo "load after: $(cat /proc/loadavg)" >&2
