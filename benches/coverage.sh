#!/usr/bin/env bash
# Do the ratio intervals of `nslat compare` cover what a rerun gives? (issue #19)
# N default compares (20 unless N=...), alternating: odd runs build and remove a fresh lab, even runs
# reuse one kept lab (`--lab`; every compare builds its own measurement cells either way, so the
# kept half differs only in the shared lab that the checks use). Prints per mode: the share of runs
# whose 95% interval contains the median ratio of all the *other* runs, the median half-width, the
# spread of the ratios; the A/A control's share within its interval; every run's wall time (lab or
# cells build, measuring, checks, tracepoint runs and teardown included). KEEP=DIR keeps the JSON and
# every instance's block means (NSLAT_DUMP_MEANS); ARGS="..." adds compare options (e.g. --replicates 5).
# Run as root, on an otherwise idle machine:
#   sudo benches/coverage.sh [path/to/nslat]
set -euo pipefail
NSLAT=${1:-target/release/nslat}
N=${N:-20}
LAB=cov$$
OUT=$(mktemp -d)
trap '"$NSLAT" lab down --name "$LAB" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] && cp -r "$OUT" "$KEEP"; rm -rf "$OUT"' EXIT
"$NSLAT" lab up --name "$LAB" >/dev/null
echo "coverage: $N default compares ($(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
for i in $(seq 1 "$N"); do
  extra=()
  kind=fresh
  if [ $((i % 2)) = 0 ]; then extra=(--lab "$LAB"); kind=kept; fi
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086 # ARGS: extra compare options, split on spaces
  NSLAT_DUMP_MEANS="$OUT/$i.means" "$NSLAT" compare --lock-wait 600 --json "$OUT/$i.json" "${extra[@]}" ${ARGS:-} \
    >"$OUT/$i.out" 2>&1 ||
    { cat "$OUT/$i.out" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$kind $t0 $t1" >"$OUT/$i.wall"
  printf '.' >&2
done
echo >&2
python3 - "$OUT" "$N" <<'PY'
import json, sys, statistics as st
out, n = sys.argv[1], int(sys.argv[2])
runs = []
for i in range(1, n + 1):
    d = json.load(open(f"{out}/{i}.json"))
    r = d[0] if isinstance(d, list) else d
    kind, t0, t1 = open(f"{out}/{i}.wall").read().split()
    runs.append((kind, float(t1) - float(t0), r))
modes = [m["mode"] for m in runs[0][2]["modes"] if m.get("vs_host") and m["mode"] != "host (A/A)"]
print(f"{'mode':<20} {'coverage':>9} {'median ±':>9} {'spread':>7} {'ratios (min..max)':>20}")
ok = True
for mode in modes:
    rows = []
    for _, _, r in runs:
        v = next((m["vs_host"] for m in r["modes"] if m["mode"] == mode and m.get("vs_host")), None)
        if v and v.get("ratio_ci95"):
            rows.append((v["ratio"], v["ratio_ci95"]))
    covered = 0
    for j, (x, (lo, hi)) in enumerate(rows):
        others = [y for k, (y, _) in enumerate(rows) if k != j]
        med = st.median(others)
        covered += lo <= med <= hi
    hw = st.median([(hi - lo) / 2 * 100 for _, (lo, hi) in rows])
    xs = [x for x, _ in rows]
    share = covered / len(rows)
    ok &= share >= 0.9 and hw <= 0.7
    print(f"{mode:<20} {covered:>4}/{len(rows):<4} {hw:>8.2f}pt {(max(xs)-min(xs))*100:>6.2f}pt "
          f"{min(xs):>9.4f}..{max(xs):.4f}")
aa = [r.get("aa_control") for _, _, r in runs]
within = sum(1 for a in aa if a and a["within_ci"])
print(f"A/A control within its interval: {within}/{len(aa)}  "
      f"(ratios {min(a['ratio'] for a in aa if a):.4f}..{max(a['ratio'] for a in aa if a):.4f})")
for kind in ("fresh", "kept"):
    w = [t for k, t, _ in runs if k == kind]
    if w:
        print(f"wall, {kind} lab: median {st.median(w):.1f} s, max {max(w):.1f} s ({len(w)} runs)")
ok &= st.median([t for _, t, _ in runs]) <= 25
print("goals (coverage >= 90% per mode, A/A >= 90%, median half-width <= 0.7 pt, wall <= 25 s):",
      "met" if ok and within >= 0.9 * len(aa) else "NOT met")
PY
