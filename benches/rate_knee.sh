#!/usr/bin/env bash
# The rate sweep's capacity markers, N times: `nslat sweep rate` (auto rates, host, bridge, ptp,
# macvlan by default), then per mode its knee (p99 over 3x idle in 6 of 10 windows), wall
# (achieved under 99% of offered in 6 of 10 windows) and kept (achieved at the wall), each with
# its ratio to the host's and the interval; the backlog packets per request at the idle rates,
# the CPU per request at the knee, and achieved/offered at the rates below each mode's knee.
#
# Usage: sudo benches/rate_knee.sh [RUNS=1] [extra nslat sweep rate args...]
# Needs root and jq. NSLAT=path/to/nslat to use another binary. The JSON of each run is kept in
# $OUT (default a temporary directory; printed).
set -euo pipefail
RUNS=${1:-1}
shift || true
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "rate_knee.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (the sweep builds a lab)"
command -v jq >/dev/null || die "needs jq"
NSLAT=${NSLAT:-$repo/target/release/nslat}
[ -x "$NSLAT" ] || (cd "$repo" && cargo build --release --quiet) || die "building nslat failed"
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs; JSON in $OUT"
for i in $(seq "$RUNS"); do
    before=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$(date +%s)
    "$NSLAT" sweep rate --json "$OUT/rate-$i.json" "$@" >"$OUT/rate-$i.txt" 2>"$OUT/rate-$i.err" \
        || { cat "$OUT/rate-$i.err" >&2; die "run $i failed"; }
    t1=$(date +%s)
    after=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "## run $i: $((t1 - t0)) s, $(jq '[.points[].offered_rps] | unique | length' "$OUT/rate-$i.json") rates, $(jq '[.points[] | select(.repeat == true) | .offered_rps] | unique | length' "$OUT/rate-$i.json") of them measured twice (confirmations); load before $before, after $after"
    jq -r '
      def r: if . == null then "-" else (. * 1000 | round / 1000 | tostring) end;
      def n: if . == null then "-" else (round | tostring) end;
      def iv: if . == null then "" else " [\(.[0] | r), \(.[1] | r)]" end;
      def br: "\(.lo | n)-\(.hi | n)\(if .confirmed then "" else " ?" end)";
      . as $rep
      | (["mode", "idle p99 us", "knee /s", "knee vs host", "wall /s", "wall vs host", "kept /s", "kept vs host", "pkts/req idle", "CPU us/req at knee", "achieved/offered below knee"] | @tsv),
        (.knees[] | . as $k
         | ([$rep.points[] | select(.mode == $k.mode and .offered_rps <= ($k.knee.lo // 0))
             | .achieved_rps / .offered_rps]) as $a
         | [ $k.mode, ($k.idle_p99_us | r), ($k.knee | br), "\($k.knee.vs_host | r)\($k.knee.vs_host_range | iv)",
             ($k.wall | br), "\($k.wall.vs_host | r)\($k.wall.vs_host_range | iv)",
             ($k.kept.rps | n), "\($k.kept.vs_host | r)\($k.kept.vs_host_range | iv)",
             ($k.backlog_pkts_per_req | r), ($k.cpu_us_per_req | r),
             (if ($a | length) > 0 then "\($a | min | .*10000 | round / 10000)-\($a | max | .*10000 | round / 10000)" else "-" end) ]
         | @tsv)' "$OUT/rate-$i.json" | column -t -s $'\t'
done
