#!/usr/bin/env bash
# Where a binary's heap goes on a real API server, under heaptrack, printed as the peak heap
# by the innermost ferrolb function. Root + kube-apiserver assets + heaptrack
# (`apt-get install heaptrack`).
#   speaker:    bench/kube/speaker_rss.sh's test (N Services, default 2000, 4 BGP peers)
#   controller: bench/kube/run.sh's driver (N Services created by 64 client tasks)
#
#   bench/kube/heap.sh speaker|controller [N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v heaptrack >/dev/null || { echo "heaptrack not found: apt-get install heaptrack" >&2; exit 2; }
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-0}
if [ -z "${KUBEBUILDER_ASSETS:-}" ] && [ -x ../shared/k8s/envtest-assets ]; then
    KUBEBUILDER_ASSETS=$(../shared/k8s/envtest-assets)
    export KUBEBUILDER_ASSETS
fi
WHAT=${1:?speaker or controller}
case "$WHAT" in speaker | controller) ;; *) echo "usage: $0 speaker|controller [N]" >&2; exit 2 ;; esac
N=${2:-2000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build -q --release -p "ferrolb-$WHAT" --bin "ferrolb-$WHAT"
BIN="$TARGET/release/ferrolb-$WHAT"
OUT=$(mktemp -d /tmp/flb-heap.XXXXXX)
# The driver stops the binary with SIGTERM by the PID it started (this wrapper): pass the
# signal on to the binary (heaptrack's child, found by parent PID and executable) so it
# exits and heaptrack writes its data.
cat > "$OUT/wrap.sh" <<EOF
#!/usr/bin/env bash
heaptrack -o "$OUT/$WHAT" "$BIN" "\$@" &
hp=\$!
stop() {
    for c in \$(pgrep -P \$hp); do
        [ "\$(readlink /proc/\$c/exe)" = "$BIN" ] && kill -TERM \$c
    done
    wait \$hp
    exit 0
}
trap stop TERM INT
wait \$hp
EOF
chmod +x "$OUT/wrap.sh"
if [ "$WHAT" = speaker ]; then
    export FERROLB_SPEAKER_BIN="$OUT/wrap.sh"
    export FERROLB_BENCH_SERVICES=$N
    export FERROLB_REQUIRE_NETNS=1 FERROLB_REQUIRE_KUBE=1
    cargo test -q -p ferrolb-tests --test kube_speaker_rss -- --ignored --nocapture 2>&1 |
        grep -E 'panicked|FAILED|test result' || true
else
    # The driver's RSS figures are the wrapper's here: read the heap below instead.
    cargo build -q -p ferrolb-tests --example kube_controller_bench
    FERROLB_TEST_CONTROLLER_BIN="$OUT/wrap.sh" \
        timeout 900 "$TARGET/debug/examples/kube_controller_bench" "$N" 64 2>&1 |
        grep -E 'panicked|created|services=' | sed -E 's/ rss_idle_mib.*//' || true
fi
for _ in $(seq 1 30); do [ -s "$OUT/$WHAT.zst" ] && break; sleep 1; done
heaptrack_print -f "$OUT/$WHAT.zst" --flamegraph-cost-type peak -F "$OUT/peak.fg" |
    grep -E '^peak heap'
python3 - "$OUT/peak.fg" <<'EOF'
import collections, re, sys
by = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(' ')
    frames = [re.sub(r'::h[0-9a-f]{16}', '', f) for f in stack.split(';')]
    ours = [f for f in frames if 'ferrolb' in f]
    by[ours[-1][:110] if ours else '(outside ferrolb)'] += int(n)
for k, v in by.most_common(12):
    print(f"{v / 1e6:7.2f} MB  {k}")
EOF
echo "data: $OUT (heaptrack --analyze $OUT/$WHAT.zst for the GUI)"
