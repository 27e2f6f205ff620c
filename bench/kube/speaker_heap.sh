#!/usr/bin/env bash
# Where the speaker's heap goes on a real API server: runs bench/kube/speaker_rss.sh's test
# (N Services, default 2000, 4 BGP peers) with the release speaker under heaptrack and prints
# the peak heap by the innermost ferrolb function. Root + kube-apiserver assets + heaptrack
# (`apt-get install heaptrack`).
#
#   bench/kube/speaker_heap.sh [N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v heaptrack >/dev/null || { echo "heaptrack not found: apt-get install heaptrack" >&2; exit 2; }
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-0}
if [ -z "${KUBEBUILDER_ASSETS:-}" ] && [ -x ../shared/k8s/envtest-assets ]; then
    KUBEBUILDER_ASSETS=$(../shared/k8s/envtest-assets)
    export KUBEBUILDER_ASSETS
fi
cargo build -q --release -p ferrolb-speaker --bin ferrolb-speaker
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/ferrolb-speaker"
OUT=$(mktemp -d /tmp/flb-heap.XXXXXX)
# The test stops the speaker with SIGTERM by the PID it started (this wrapper): pass the
# signal on to the speaker (heaptrack's child, found by parent PID and executable) so it
# exits and heaptrack writes its data.
cat > "$OUT/wrap.sh" <<EOF
#!/usr/bin/env bash
heaptrack -o "$OUT/speaker" "$BIN" "\$@" &
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
export FERROLB_SPEAKER_BIN="$OUT/wrap.sh"
export FERROLB_BENCH_SERVICES=${1:-2000}
export FERROLB_REQUIRE_NETNS=1 FERROLB_REQUIRE_KUBE=1
cargo test -q -p ferrolb-tests --test kube_speaker_rss -- --ignored --nocapture 2>&1 |
    grep -E 'panicked|FAILED|test result' || true
for _ in $(seq 1 30); do [ -s "$OUT"/speaker.zst ] && break; sleep 1; done
heaptrack_print -f "$OUT"/speaker.zst --flamegraph-cost-type peak -F "$OUT/peak.fg" |
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
echo "data: $OUT (heaptrack --analyze $OUT/speaker.zst for the GUI)"
