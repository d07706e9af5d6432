#!/usr/bin/env bash
# Do nslat compare's mode/host latency ratios agree with sockperf's on the reference topology?
# In one run: the reference lab (../shared/reference/lab.sh: anc-a node, anc-b remote, anc-cv bridge,
# anc-cr ptp, anc-cm macvlan) measured with sockperf ping-pong (client and server pinned to one CPU,
# modes interleaved, REPS rounds), then `nslat compare` on its own lab, then sockperf again.
# Prints each mode's latency/host ratio from both and the difference in percentage points (goal: within ±3).
# usage: sudo benches/compare_vs_sockperf.sh [REPS] [SECONDS]     (root; sockperf installed)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-5}; SECS=${2:-2}
[[ "$REPS" =~ ^[1-9][0-9]*$ && "$SECS" =~ ^[1-9][0-9]*$ ]] || { echo "compare_vs_sockperf: REPS and SECONDS are whole numbers (sockperf -t takes whole seconds)" >&2; exit 2; }
# The reference lives beside the repository; from a git worktree, beside the main checkout.
LABSH=${LAB_SH:-../shared/reference/lab.sh}
if [ ! -f "$LABSH" ]; then
  common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  [ -n "$common" ] && LABSH="$(dirname "$common")/../shared/reference/lab.sh"
fi
[ -f "$LABSH" ] || { echo "compare_vs_sockperf: ../shared/reference/lab.sh not found beside the repo (or set LAB_SH)" >&2; exit 2; }
command -v sockperf >/dev/null || { echo "compare_vs_sockperf: sockperf not installed (scripts/install-deps)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "compare_vs_sockperf: run as root" >&2; exit 2; }
cargo build --release --quiet
NSLAT=target/release/nslat
CPU=$(( $(nproc) - 1 ))
PORT=11112
OUT=$(mktemp -d)
cleanup() {
  ip netns pids anc-b 2>/dev/null | xargs -r kill 2>/dev/null || true
  bash "$LABSH" down || true
  rm -rf "$OUT"
}
trap cleanup EXIT
bash "$LABSH" down 2>/dev/null || true
bash "$LABSH" up
ip netns exec anc-b taskset -c "$CPU" sockperf server --tcp -i 198.18.0.2 -p $PORT >/dev/null 2>&1 &
sleep 0.5

declare -A NS=([host]=anc-a [bridge]=anc-cv [ptp]=anc-cr [macvlan]=anc-cm)
MODES=(host bridge ptp macvlan)
sockperf_round() {   # appends "mode latency_us" lines (sockperf reports RTT/2; ratios are the same)
  for m in "${MODES[@]}"; do
    lat=$(ip netns exec "${NS[$m]}" taskset -c "$CPU" sockperf ping-pong --tcp -i 198.18.0.2 -p $PORT -t "$SECS" -m 14 2>&1 |
          sed -n 's/.*Summary: Latency is \([0-9.]*\) usec.*/\1/p')
    [ -n "$lat" ] || { echo "compare_vs_sockperf: sockperf from $m gave no latency" >&2; exit 1; }
    echo "$m $lat" >> "$OUT/sockperf"
  done
}
half=$(( (REPS + 1) / 2 ))
for _ in $(seq "$half"); do sockperf_round; done
$NSLAT compare --modes host,bridge,ptp,macvlan --reps "$REPS" -l "$SECS" --no-checks --json "$OUT/nslat.json" >/dev/null 2>"$OUT/nslat.log" ||
  { cat "$OUT/nslat.log" >&2; exit 1; }
for _ in $(seq $(( REPS - half ))); do sockperf_round; done

python3 - "$OUT/sockperf" "$OUT/nslat.json" <<'PY'
import json, sys, statistics as st
sp = {}
for line in open(sys.argv[1]):
    m, v = line.split()
    sp.setdefault(m, []).append(float(v))
ns = {m["mode"]: m for m in json.load(open(sys.argv[2]))["modes"]}
host_sp = st.mean(sp["host"])
print(f"{'mode':8} {'sockperf µs(RTT/2)':>18} {'sockperf ratio':>14} {'nslat µs':>9} {'nslat ratio':>11} {'Δ pp':>6}")
worst = 0.0
for m in ["host", "bridge", "ptp", "macvlan"]:
    r_sp = st.mean(sp[m]) / host_sp
    r_ns = 1.0 if m == "host" else ns[m]["vs_host"]["ratio"]
    d = (r_ns - r_sp) * 100
    worst = max(worst, abs(d))
    print(f"{m:8} {st.mean(sp[m]):18.3f} {r_sp:14.3f} {ns[m]['latency_us']['mean']:9.3f} {r_ns:11.3f} {d:+6.1f}")
print(f"largest difference: {worst:.1f} percentage points (goal: within 3)")
PY
