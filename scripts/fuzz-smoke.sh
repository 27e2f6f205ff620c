#!/usr/bin/env bash
# Fuzz smoke for CI: runs every cargo-fuzz target of arp/fuzz, bgp/fuzz and bfd/fuzz for
# FUZZ_SECONDS (default 10) each, starting from the committed seed corpus
# (<crate>/fuzz/seeds/<target>/: captured real messages, the crates' test vectors).
# A crash, panic, leak or timeout found by libFuzzer fails the script (exit 1) and leaves the
# reproducer in <crate>/fuzz/artifacts/<target>/.
#
# Needs a nightly toolchain (cargo-fuzz builds with -Zsanitizer). Without nightly it says so
# and exits 0 (skipped), so a stable-only machine still runs the rest of the tests.
# With nightly but no cargo-fuzz (a fresh CI machine) it runs `cargo install --locked
# cargo-fuzz` from crates.io first (FUZZ_INSTALL=0: skip instead). FUZZ_REQUIRE=1 turns any
# skip into a failure.
#
# Time budget: CI must stay under 25 min and the rest of scripts/test.sh takes ~15 min cold, so
# this stage gets ~5 min: cargo-fuzz install + building the 3 fuzz crates + 9 targets x
# FUZZ_SECONDS. Measured on the 2-core dev machine (shared with other builds, load ~11),
# 2026-12-04: install 98 s; with one shared target dir and no sanitizer, all three crates
# built and 8 targets run for 10 s each in 272 s (9 targets since the BFD machine's) (before: arp/fuzz alone took 5 min 8 s to
# build with ASan in its own target dir).
# To fuzz longer, set FUZZ_SECONDS.
#
# The committed seeds are never written to: libFuzzer adds new inputs to the FIRST corpus
# directory it is given, so that is a scratch directory and the seeds come second.
#
#   scripts/fuzz-smoke.sh                 # every target, 10 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh bgp/fuzz:update   # one target, longer
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-10}
# One target dir for the three fuzz crates (each had its own: libFuzzer and every shared
# dependency were built three times). No sanitizer by default: the code under test is safe
# Rust (a panic, overflow or out-of-bounds index is caught without ASan) and ASan multiplies
# build and run time; FUZZ_SANITIZER=address for a longer session.
TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/target/fuzz}
SANITIZER=${FUZZ_SANITIZER:-none}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}

skip() {
    echo "== fuzz smoke SKIPPED: $1" >&2
    if [ "${FUZZ_REQUIRE:-0}" = 1 ]; then exit 1; fi
    exit 0
}
command -v cargo >/dev/null || skip "no cargo"
cargo "+$TOOLCHAIN" --version >/dev/null 2>&1 || skip "no '$TOOLCHAIN' toolchain (rustup toolchain install nightly)"
if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
    [ "${FUZZ_INSTALL:-1}" = 1 ] || skip "cargo-fuzz not installed (cargo install --locked cargo-fuzz)"
    echo "== installing cargo-fuzz (cargo install --locked cargo-fuzz)"
    t0=$(date +%s)
    cargo install --locked cargo-fuzz || skip "cargo install cargo-fuzz failed"
    echo "== cargo-fuzz installed in $(( $(date +%s) - t0 )) s"
    cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz still not runnable"
fi
t_start=$(date +%s)

# Targets: DIR:NAME for every [[bin]] of each fuzz crate, or those named on the command line.
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for dir in arp/fuzz bgp/fuzz bfd/fuzz; do
        for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | tail -n +2); do
            targets+=("$dir:$t")
        done
    done
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ferrolb-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failed=()
for spec in "${targets[@]}"; do
    dir=${spec%%:*} t=${spec#*:}
    seeds="$dir/seeds/$t"
    [ -d "$seeds" ] || { echo "== $dir $t: no seed corpus at $seeds" >&2; failed+=("$spec"); continue; }
    mkdir -p "$scratch/$dir/$t"
    echo "== fuzz $dir $t for ${SECS}s from $(ls "$seeds" | wc -l) seeds"
    # -max_total_time ends a clean run with status 0; a finding exits non-zero.
    if ! cargo "+$TOOLCHAIN" fuzz run --fuzz-dir "$dir" --target-dir "$TARGET_DIR" \
        --sanitizer "$SANITIZER" "$t" "$scratch/$dir/$t" "$seeds" \
        -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$spec")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz smoke FAILED: ${failed[*]} (reproducers in <crate>/fuzz/artifacts/)" >&2
    exit 1
fi
echo "== fuzz smoke passed: ${#targets[@]} targets, ${SECS}s each, $(( $(date +%s) - t_start )) s with builds"
