#!/usr/bin/env bash
# ferrolb lab: the main job, end to end, on one Debian machine with no cluster.
#
#   sudo bash examples/lab/run.sh            # build, set up, run the four scenarios, clean up
#   sudo bash examples/lab/run.sh --keep     # leave the lab running until Ctrl-C (explore it)
#
# Topology (all inside network namespaces flblab-<PID>-<role> that the lab creates;
# documentation addresses only):
#
#     client-out 198.51.100.2 ── r (FRR: zebra+bgpd, ECMP, L4 hash) 198.51.100.1
#                                 │ br0 192.0.2.1/24  (one L2 segment)
#        ┌────────────┬───────────┼─────────────┬──────────────┐
#     n1 192.0.2.11  n2 192.0.2.12  n3 192.0.2.13   client-l2 192.0.2.50
#     (speaker + HTTP backend on each node; the controller runs in its own namespace)
#
# Service "web-l2" gets an IP from pool l2-pool (192.0.2.200-192.0.2.210, on the segment: one
# node answers ARP for it). Service "web-bgp" gets an IP from pool bgp-pool (203.0.113.0/28):
# every node announces it over BGP to r, which installs a 3-way ECMP route.
#
# This script installs what is missing and builds; the lab and the scenarios are the `lab`
# binary of the tests crate (tests/src/lab.rs, tests/src/lab/demo.rs), the same lab the
# tests and bench/lab use. The trap below runs `lab down` however the demo ends.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KEEP=()
[ "${1:-}" = "--keep" ] && KEEP=(--keep)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\n\033[31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces need it): sudo bash $0"

say "Installing missing Debian packages (frr, iproute2, arping, curl, ...)"
# shellcheck source=../../scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"
install_test_deps
say "Building release binaries (ferrolb-controller, ferrolb-speaker, lab)"
(cd "$ROOT" && cargo build --release --locked -q -p ferrolb-controller -p ferrolb-speaker -p ferrolb-tests --bins)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release

WORK=$(mktemp -d /tmp/ferrolb-lab.XXXXXX)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -f "$WORK/lab.env" ]; then
        if [ $rc = 0 ]; then "$BIN/lab" down --work "$WORK"; else
            "$BIN/lab" down --work "$WORK" --keep-work; echo "logs kept in $WORK" >&2
        fi
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT INT TERM
"$BIN/lab" demo --prefix "flblab-$$" --work "$WORK" --bin "$BIN" "${KEEP[@]}" "$HERE/manifests"
