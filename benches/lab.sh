#!/usr/bin/env bash
# Lab build speed: `nslat lab up --modes host,bridge,ptp,macvlan` + `down` against the reference
# iproute2 script (../shared/reference/lab.sh up + down), interleaved N times (default 7).
# Goal: nslat <= 0.25 x the script's time. Needs root. Usage: benches/lab.sh [N]
set -euo pipefail
N=${1:-7}
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=${LAB_SH:-$repo/../shared/reference/lab.sh}
[ -x "$ref" ] || ref=/work/shared/reference/lab.sh
[ "$(id -u)" = 0 ] || { echo "benches/lab.sh needs root" >&2; exit 2; }
(cd "$repo" && cargo build --release -q)
nslat=$repo/target/release/nslat
name=bench$$
trap '"$nslat" lab down --name $name >/dev/null 2>&1 || true; "$ref" down >/dev/null 2>&1 || true' EXIT
"$ref" down >/dev/null 2>&1 || true
now() { date +%s%N; }
ours=() refs=()
for i in $(seq 1 "$N"); do
  t0=$(now); "$nslat" lab up --name "$name" --modes host,bridge,ptp,macvlan >/dev/null
  t1=$(now); "$nslat" lab down --name "$name" >/dev/null; t2=$(now)
  "$ref" up; t3=$(now); "$ref" down; t4=$(now)
  ours+=($(( (t2 - t0) / 1000 ))); refs+=($(( (t4 - t2) / 1000 )))
  printf 'run %d: nslat %6.1f ms (up %5.1f, down %5.1f)   lab.sh %6.1f ms (up %5.1f, down %5.1f)\n' "$i" \
    "$(echo "($t2-$t0)/1000000" | bc -l)" "$(echo "($t1-$t0)/1000000" | bc -l)" "$(echo "($t2-$t1)/1000000" | bc -l)" \
    "$(echo "($t4-$t2)/1000000" | bc -l)" "$(echo "($t3-$t2)/1000000" | bc -l)" "$(echo "($t4-$t3)/1000000" | bc -l)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mo=$(median "${ours[@]}"); mr=$(median "${refs[@]}")
awk -v o="$mo" -v r="$mr" -v n="$N" 'BEGIN {
  printf "median of %d: nslat up+down %.1f ms, lab.sh up+down %.1f ms, ratio %.3f (goal <= 0.25): %s\n",
    n, o/1000, r/1000, o/r, (o/r <= 0.25 ? "PASS" : "FAIL") }'
