#!/usr/bin/env bash
# Membership with real netem (default 1% loss and 5 ms ± 5 ms delay on every member's link) in
# the test VM: this host's kernel has no netem qdisc, Debian's kernel in the VM has
# (tests/vm/prepare.sh builds the VM; tests/examples/vm_run.rs runs a script in it). Runs
# bench/membership/bench.py inside the VM: crash trials, then SOAK seconds idle counting
# false positives. The VM is emulated (TCG, one vCPU), so detection times here are slower than
# on hardware; the false-positive count under loss and jitter is what this run is for.
#
#   sudo bash bench/membership/vm-soak.sh [MEMBERS] [SOAK_SECONDS]     (default 10, 600)
#   env: TRIALS (crash trials, default 5), NETEM (tc netem arguments; empty: no netem, the
#        control run), PROFILE (default fast),
#        RELEASE=1 (release build of the member example; default a debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MEMBERS=${1:-10}
SOAK=${2:-600}
TRIALS=${TRIALS:-5}
NETEM=${NETEM-delay 5ms 5ms loss 1%}
PROFILE=${PROFILE:-fast}
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces inside the VM)" >&2; exit 1; }
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "${RELEASE:-0}" = 1 ]; then
    cargo build -q --release -p ferrolb-speaker --example member
    BIN=$TARGET/release/examples/member
else
    cargo build -q -p ferrolb-speaker --example member
    BIN=$TARGET/debug/examples/member
fi
cargo build -q -p ferrolb-tests --example vm_run
SCRIPT=$(mktemp /tmp/flb-vm-soak.XXXXXX)
trap 'rm -f "$SCRIPT"' EXIT
cat > "$SCRIPT" <<SH
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd '$ROOT'
echo "vm: kernel \$(uname -r), \$(nproc) vCPU, load \$(cat /proc/loadavg)"
exec python3 bench/membership/bench.py --binary '$BIN' --members $MEMBERS --trials $TRIALS \
    --modes crash --profile $PROFILE --netem '$NETEM' --window 20 --soak $SOAK
SH
echo "host load before: $(cat /proc/loadavg)" >&2
"$TARGET/debug/examples/vm_run" $((SOAK + 900)) "$SCRIPT"
echo "host load after: $(cat /proc/loadavg)" >&2
