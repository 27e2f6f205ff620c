#!/usr/bin/env bash
# Fuzz smoke for CI: runs every cargo-fuzz target of arp/fuzz, bgp/fuzz and bfd/fuzz for
# FUZZ_SECONDS (default 15) each, starting from the committed seed corpus
# (<crate>/fuzz/seeds/<target>/: captured real messages, the crates' test vectors).
# A crash, panic, leak or timeout found by libFuzzer fails the script (exit 1) and leaves the
# reproducer in <crate>/fuzz/artifacts/<target>/.
#
# Needs a nightly toolchain (cargo-fuzz builds with -Zsanitizer) and cargo-fuzz; without them
# it says so and exits 0 (skipped), so a stable-only machine still runs the rest of the
# tests. FUZZ_REQUIRE=1 turns the skip into a failure.
#
# The committed seeds are never written to: libFuzzer adds new inputs to the FIRST corpus
# directory it is given, so that is a scratch directory and the seeds come second.
#
#   scripts/fuzz-smoke.sh                 # every target, 15 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh bgp/fuzz:update   # one target, longer
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-15}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}

skip() {
    echo "== fuzz smoke SKIPPED: $1" >&2
    if [ "${FUZZ_REQUIRE:-0}" = 1 ]; then exit 1; fi
    exit 0
}
command -v cargo >/dev/null || skip "no cargo"
cargo "+$TOOLCHAIN" --version >/dev/null 2>&1 || skip "no '$TOOLCHAIN' toolchain (rustup toolchain install nightly)"
cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz not installed (cargo install cargo-fuzz)"

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
    if ! cargo "+$TOOLCHAIN" fuzz run --fuzz-dir "$dir" "$t" "$scratch/$dir/$t" "$seeds" \
        -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$spec")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz smoke FAILED: ${failed[*]} (reproducers in <crate>/fuzz/artifacts/)" >&2
    exit 1
fi
echo "== fuzz smoke passed: ${#targets[@]} targets, ${SECS}s each"
