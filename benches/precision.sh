#!/usr/bin/env bash
# Precision of `nslat compare` on this machine (issue #10): on one lab, back to back, the default
# (interleaved) compare 5 times and `--schedule runs` 5 times; for each schedule the wall time, every
# mode's ratio to host with its 95% CI half-width, and the spread (max - min) of each ratio over the
# 5 runs; the A/A control; then what B=1 and B=10 give; then, in one process on the same lab, per-mode
# means of interleaved 1 ms blocks against steady 50 ms blocks of the same mode, alternated 100
# times (examples/block_size.rs: the machine's drift between separate runs is several percent, so
# separate compares cannot show a 1% difference). KEEP=DIR keeps the JSON. Run as root:
#   sudo flock /tmp/nslat-bench.lock benches/precision.sh [path/to/nslat]
set -euo pipefail
NSLAT=${1:-target/release/nslat}
MODES=host,bridge,ptp,macvlan
LAB=prec$$
OUT=$(mktemp -d)
trap '"$NSLAT" lab down --name "$LAB" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] && cp -r "$OUT" "$KEEP"; rm -rf "$OUT"' EXIT
"$NSLAT" lab up --name "$LAB" --modes "$MODES" >/dev/null
run() { # name, extra args... (the default compare builds and removes its own lab: its wall time
  # includes the lab build, checks, tracepoint runs and teardown; `--lab "$LAB"` reuses the one lab)
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$NSLAT" compare --modes "$MODES" --lock-wait 600 --json "$OUT/$name.json" "$@" >"$OUT/$name.out" 2>&1 ||
    { cat "$OUT/$name.out" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t0 $t1" >"$OUT/$name.wall"
}
# Alternated, so each interleaved run has a steady-runs run of the same minute beside it.
for i in 1 2 3 4 5; do
  run "interleaved-$i"
  run "runs-$i" --schedule runs --lab "$LAB"
done
run b1 --block-transactions 1 --lab "$LAB"
run b10 --block-transactions 10 --lab "$LAB"
BLOCK_SIZE=$(dirname "$NSLAT")/examples/block_size
[ -x "$BLOCK_SIZE" ] || cargo build --release --quiet --example block_size
"$BLOCK_SIZE" "$LAB" 100 1 50 >"$OUT/block_size.out"
python3 - "$OUT" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
def load(name):
    r = json.load(open(f"{out}/{name}.json"))
    t0, t1 = map(float, open(f"{out}/{name}.wall").read().split())
    return r, t1 - t0
for sched in ("interleaved", "runs"):
    how = ("each builds, checks and removes its own lab: wall time is all of it" if sched == "interleaved"
           else "on one kept lab: wall time excludes the lab build")
    print(f"== {sched} (5 runs; {how})")
    ratios = {}
    for i in range(1, 6):
        r, wall = load(f"{sched}-{i}")
        row = []
        for m in r["modes"]:
            v = m.get("vs_host")
            if not v: continue
            ci = v.get("ratio_ci95")
            half = f"±{(ci[1] - ci[0]) / 2 * 100:.2f}pt" if ci else "(no ratio CI)"
            ratios.setdefault(m["mode"], []).append(v["ratio"])
            row.append(f"{m['mode']} {v['ratio']:.4f} {half}")
        aa = r.get("aa_control")
        aa_s = (f" A/A {aa['ratio']:.4f} within CI: {aa['within_ci']}, within tolerance: "
                f"{aa.get('within_tolerance')}") if aa else ""
        b = r.get("block_transactions")
        print(f"  run {i}: {wall:5.1f} s wall, B={b}, rounds/reps={r['reps']}: " + "; ".join(row) + aa_s)
    for mode, xs in ratios.items():
        print(f"  spread {mode}: {(max(xs) - min(xs)) * 100:.2f} points over {len(xs)} runs")
    host = [m for i in range(1, 6) for m in load(f"{sched}-{i}")[0]["modes"] if m["mode"] == "host"]
for name in ("b1", "b10"):
    r, wall = load(name)
    print(f"== B={r.get('block_transactions')}: " + "; ".join(
        f"{m['mode']} {m['latency_us']['mean']:.2f} µs" + (f" ratio {m['vs_host']['ratio']:.4f}" if m.get('vs_host') else "")
        for m in r["modes"] if m.get("latency_us")))
# per-mode latency: interleaved (blocks) vs steady runs of the same mode, each pair in the same
# minute. The mean of steady runs keeps the client's preemptions (stalls), which the interleaved
# block means leave out: on a loaded machine compare the medians too.
print("== interleaved vs steady runs, per mode (5 pairs of separate compares, same minute)")
for mode in ("host", "bridge", "ptp", "macvlan"):
    for key in ("mean", "p50"):
        il = [m["latency_us"][key] for i in range(1, 6) for m in load(f"interleaved-{i}")[0]["modes"] if m["mode"] == mode]
        ru = [m["latency_us"][key] for i in range(1, 6) for m in load(f"runs-{i}")[0]["modes"] if m["mode"] == mode]
        a, b = sum(il) / len(il), sum(ru) / len(ru)
        print(f"  {mode} {key}: interleaved {a:.3f} µs vs steady runs {b:.3f} µs ({(a / b - 1) * 100:+.2f}%)")
print("== interleaved vs steady, one process (examples/block_size.rs)")
print(open(f"{out}/block_size.out").read().rstrip())
print(f"== load average at the end: {open('/proc/loadavg').read().split()[0]}")
PY
