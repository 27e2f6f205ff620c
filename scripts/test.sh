#!/usr/bin/env bash
# The test command: installs what the tests need (on Debian, as root, only what is missing),
# then runs the whole suite: rustfmt check, clippy with -D warnings, and cargo test for the
# whole workspace, network-namespace tests included.
#
#   sudo bash scripts/test.sh            # everything
#   bash scripts/test.sh -- -p ferrolb-bgp   # extra args go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive for real. Keep this list and scripts/install-deps.sh in sync.
source scripts/install-deps.sh
install_test_deps
prepare_test_vm

if [ "$(id -u)" = 0 ]; then
    # As root the namespace tests must run: a skip would hide a failure.
    export FERROLB_REQUIRE_NETNS=1
else
    echo "note: not root; network-namespace tests will skip (run as root to include them)" >&2
fi

# A real kube-apiserver + etcd for the Kubernetes tests (envtest convention: KUBEBUILDER_ASSETS
# names a directory holding kube-apiserver and etcd). Prepared from ../shared/k8s when that sits
# beside the checkout (as in CI); otherwise point KUBEBUILDER_ASSETS at `setup-envtest` assets.
# Under CI=true (or FERROLB_REQUIRE_KUBE=1) the Kubernetes tests fail instead of skipping when
# the assets are missing.
if [ -z "${KUBEBUILDER_ASSETS:-}" ] && [ -x ../shared/k8s/envtest-assets ]; then
    KUBEBUILDER_ASSETS=$(../shared/k8s/envtest-assets)
    export KUBEBUILDER_ASSETS
fi
if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
    echo "== Kubernetes assets: $KUBEBUILDER_ASSETS"
else
    echo "note: KUBEBUILDER_ASSETS unset and no ../shared/k8s; real-API-server tests will skip" >&2
fi

start=$(date +%s)
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace --locked "${@}"
echo "== done in $(( $(date +%s) - start )) s"
bash scripts/fuzz-smoke.sh
