#!/usr/bin/env bash
# Membership detection-time benchmark: crash (SIGKILL, no leave) and graceful leave
# (SIGTERM -> leave), time from the signal until the other members' live sets drop the
# node. Runs ferrolb's default tuning and, as the in-run baseline, the same code with
# memberlist's DefaultLANConfig timers (what MetalLB uses). Needs root (namespaces).
#
#   sudo bash bench/membership/run.sh                  # 3 members, 20 trials each
#   TRIALS=40 MEMBERS=5 sudo -E bash bench/membership/run.sh
#   WINDOW=20 ...    also measure bytes/s per member over 20 s of steady state
#   NETEM='delay 5ms 5ms loss 1%' ...   netem on every member's eth0 egress
#   LOSS=0.01 ...    drop 1% of every member's outgoing datagrams (iptables, no netem needed)
#   PROFILES='fast swim-only memberlist-lan' ...  (swim-only: SWIM with the earlier
#   defaults, no ring monitor)
set -euo pipefail
cd "$(dirname "$0")/../.."
TRIALS=${TRIALS:-20}
MEMBERS=${MEMBERS:-3}
SOAK=${SOAK:-60}
WINDOW=${WINDOW:-0}
NETEM=${NETEM:-}
LOSS=${LOSS:-0}
PROFILES=${PROFILES:-"fast memberlist-lan"}
OUT=${OUT:-target/bench-membership}
mkdir -p "$OUT"
cargo build --release -p ferrolb-speaker --example member
BIN=target/release/examples/member
for profile in $PROFILES; do
    echo "== $profile: $MEMBERS members, $TRIALS trials per mode" >&2
    python3 bench/membership/bench.py --binary "$BIN" --members "$MEMBERS" \
        --trials "$TRIALS" --profile "$profile" --soak "$SOAK" --window "$WINDOW" \
        --netem "$NETEM" --loss "$LOSS" --json "$OUT/$profile-$MEMBERS.json" >/dev/null
done
python3 - "$OUT" "$MEMBERS" $PROFILES <<'PY'
import json, sys
out, n, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = [json.load(open(f"{out}/{p}-{n}.json")) for p in profiles]
print(f"| profile | event | trials | p50 ms | p95 ms | p99 ms | max ms |")
print(f"|---|---|---|---|---|---|---|")
for r in runs:
    for mode, v in r["results"].items():
        s = v["all_observers"]
        print(f"| {r['profile']} | {mode} | {s['n']} | {s['p50']:.0f} | {s['p95']:.0f} "
              f"| {s['p99']:.0f} | {s['max']:.0f} |")
for r in runs:
    b = r.get("bytes_per_s")
    if b:
        print(f"\n{r['profile']}: bytes/s per member (UDP payload) in {b['in_mean']:.0f} "
              f"out {b['out_mean']:.0f} (max in {b['in_max']:.0f} out {b['out_max']:.0f})")
for r in runs:
    print(f"\n{r['profile']}: false positives during trials {r['false_positives']}, "
          f"during a {r['soak_seconds']:.0f} s idle soak {r['soak_false_positives']}")
fast = runs[0]
lan = runs[1] if len(runs) > 1 else {"results": {}}
for mode in fast["results"]:
    if mode in lan["results"]:
        a = fast["results"][mode]["all_observers"]["p50"]
        b = lan["results"][mode]["all_observers"]["p50"]
        print(f"\n{mode}: memberlist-LAN timers / ferrolb default, p50 ratio = {b / a:.1f}x")
PY
