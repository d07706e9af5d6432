#!/usr/bin/env bash
# The engine against the floor: on a private pair of namespaces joined by a veth pair, client and
# server pinned to one CPU, interleaved rounds (A B C A B C ...) of
#   A  nslat run -t TCP_RR (1,1 bytes, every transaction timed into a histogram)
#   B  the floor loop ../shared/reference/pingpong.c (1 byte, no per-transaction timing)
#   C  sockperf ping-pong --tcp (14-byte messages: sockperf's minimum)
# and prints transactions/s of each, and the ratios nslat/floor and nslat/sockperf.
# Goal: nslat >= 0.98 x floor.
#
# Usage (root): benches/floor.sh [ROUNDS=5] [SECS=5] [CPU=0]
#   NSLAT=path/to/nslat to test another binary (default: target/release/nslat, built if missing).
#   RT=1 runs every client and server under SCHED_FIFO (chrt -f 10), so that other work on a busy
#   machine cannot preempt them mid-run (all three tools get the same treatment).
set -euo pipefail

ROUNDS=${1:-5}
SECS=${2:-5}
CPU=${3:-0}
repo=$(cd "$(dirname "$0")/.." && pwd)
# The floor loop lives next to the repository (../shared/reference); from a git worktree, next
# to the main checkout. PINGPONG_C overrides.
ref=${PINGPONG_C:-$repo/../shared/reference/pingpong.c}
if [ ! -f "$ref" ] && [ -z "${PINGPONG_C:-}" ]; then
    common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
    [ -n "$common" ] && [ -f "$(dirname "$common")/../shared/reference/pingpong.c" ] &&
        ref="$(dirname "$common")/../shared/reference/pingpong.c"
fi

die() { echo "floor.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (it creates two network namespaces); run it with sudo"
[ -f "$ref" ] || die "the floor loop $ref is missing: put the shared reference directory next to the repository (../shared/reference) or set PINGPONG_C"
command -v gcc >/dev/null || die "gcc is not installed (apt-get install gcc)"
command -v sockperf >/dev/null || die "sockperf is not installed (scripts/install-deps installs it)"
[ "$ROUNDS" -ge 1 ] 2>/dev/null || die "ROUNDS must be a positive integer"

NSLAT=${NSLAT:-$repo/target/release/nslat}
if [ ! -x "$NSLAT" ]; then
    (cd "$repo" && cargo build --release --quiet) || die "building nslat failed"
fi

tmp=$(mktemp -d)
A="nslat-floor-$$-a"
B="nslat-floor-$$-b"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

gcc -O2 -o "$tmp/pingpong" "$ref" || die "compiling $ref failed"

# The pair: links are created inside the namespaces, never in the root namespace.
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link add va type veth peer name vb netns "$B"
ip -n "$A" addr add 198.18.0.1/24 dev va
ip -n "$B" addr add 198.18.0.2/24 dev vb
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set va up
ip -n "$B" link set vb up

S=198.18.0.1
pin=(taskset -c "$CPU")
[ "${RT:-0}" = 1 ] && pin=(chrt -f 10 taskset -c "$CPU")
"${pin[@]}" ip netns exec "$A" "$NSLAT" serve --listen "$S:12866" --quiet & pids+=($!)
"${pin[@]}" ip netns exec "$A" "$tmp/pingpong" s 12867 & pids+=($!)
"${pin[@]}" ip netns exec "$A" sockperf sr --tcp -i "$S" -p 12868 >/dev/null 2>&1 & pids+=($!)
sleep 1

run_nslat() {
    "${pin[@]}" ip netns exec "$B" "$NSLAT" run -H "$S:12866" -t TCP_RR -l "$SECS" --warmup 1 \
        -T "$CPU,$CPU" --json | sed -n 's/.*"trans_per_s": *\([0-9.]*\).*/\1/p'
}
run_floor() {
    "${pin[@]}" ip netns exec "$B" "$tmp/pingpong" c "$S" 12867 "$SECS" | awk '{print $1}'
}
run_sockperf() {
    "${pin[@]}" ip netns exec "$B" sockperf pp --tcp -i "$S" -p 12868 -t "$SECS" -m 14 2>&1 |
        sed -n 's/.*RunTime=\([0-9.]*\) sec; SentMessages=[0-9]*; ReceivedMessages=\([0-9]*\).*/\2 \1/p' |
        awk '{printf "%.2f\n", $1 / $2}'
}

printf '%-6s %14s %14s %14s %10s %10s\n' round nslat floor sockperf n/floor n/sockperf
results="$tmp/results"
: > "$results"
for i in $(seq 1 "$ROUNDS"); do
    a=$(run_nslat); b=$(run_floor); c=$(run_sockperf)
    [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] || die "round $i: a run printed no result (nslat '$a', floor '$b', sockperf '$c')"
    echo "$a $b $c" >> "$results"
    awk -v i="$i" -v a="$a" -v b="$b" -v c="$c" \
        'BEGIN { printf "%-6s %14.0f %14.0f %14.0f %10.3f %10.3f\n", i, a, b, c, a/b, a/c }'
done
# Headline: the median of the per-round ratios (rounds are interleaved, so a burst of load from
# elsewhere spoils one round's ratio, not the median); also the ratio of the means.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mf=$(awk '{ print $1 / $2 }' "$results" | median)
ms=$(awk '{ print $1 / $3 }' "$results" | median)
rt=""; [ "${RT:-0}" = 1 ] && rt=", SCHED_FIFO"
awk -v mf="$mf" -v ms="$ms" -v cpu="$CPU" -v secs="$SECS" -v rt="$rt" '{ a += $1; b += $2; c += $3; n++ }
     END { printf "%-6s %14.0f %14.0f %14.0f %10.3f %10.3f\n", "mean", a/n, b/n, c/n, a/b, a/c
           printf "\nnslat/floor = %.3f (median of rounds; goal >= 0.98), nslat/sockperf = %.3f; ratio of means %.3f / %.3f\n", mf, ms, a/b, a/c
           printf "client and server on CPU %s, %s s per run, %d rounds%s\n", cpu, secs, n, rt }' "$results"
