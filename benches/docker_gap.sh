#!/usr/bin/env bash
# Where Docker's default bridge and the lab's bridge differ (README "Measuring your own
# containers"): Docker's rules are read in the root namespace (`iptables-save`, never changed) and
# loaded into the node of a private lab (host,bridge), one step at a time, with a compare after each
# step; then a user-defined network container's own rules (Docker's embedded DNS NAT table) into
# the macvlan namespace of a second lab (host,macvlan). Prints bridge/host (or macvlan/host) with
# its 95% CI and the rounds per step. Needs a running Docker Engine with its iptables-nft rules;
# MV_CONTAINER names a container on a user-defined network (skipped when empty). Run as root:
#   sudo flock /tmp/nslat-bench.lock benches/docker_gap.sh [path/to/nslat]
set -euo pipefail
NSLAT=${1:-target/release/nslat}
LAB=dgap$$
LAB2=dgapm$$
OUT=$(mktemp -d)
trap '"$NSLAT" lab down --name "$LAB" >/dev/null 2>&1 || true; "$NSLAT" lab down --name "$LAB2" >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT
NODE=nslat-$LAB-node
"$NSLAT" lab up --name "$LAB" --modes host,bridge >/dev/null
SUBNET=$(ip -n "$NODE" -4 -o addr show docker0 | awk '{print $4}' | sed 's#\.[0-9]*/#.0/#')
DOCKER_SUBNET=$(iptables-save -t nat | awk '/MASQUERADE/ && /docker0/ {for(i=1;i<=NF;i++) if($i=="-s") print $(i+1)}' | head -1)
step() { # name, lab, modes, row
  "$NSLAT" compare --lab "$2" --modes "$3" --no-checks --json "$OUT/$1.json" >/dev/null 2>&1
  python3 - "$OUT/$1.json" "$1" "$4" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
m = next(m for m in r["modes"] if m["mode"] == sys.argv[3])
v = m["vs_host"]
lo, hi = v["ratio_ci95"]
print(f"{sys.argv[2]:<40} {v['ratio']:.3f} ± {(hi - lo) / 2:.3f}  {r['reps']} rounds")
EOF
}
clear() {
  ip netns exec "$NODE" nft delete table ip filter 2>/dev/null || true
  ip netns exec "$NODE" nft delete table ip nat 2>/dev/null || true
}
docker_rules() { iptables-save "$@" | sed "s#$DOCKER_SUBNET#$SUBNET#" | ip netns exec "$NODE" iptables-nft-restore; }
step "lab's own MASQUERADE only" "$LAB" host,bridge bridge
docker_rules
step "+ Docker's filter and nat tables" "$LAB" host,bridge bridge
for t in raw mangle filter nat; do ip netns exec "$NODE" iptables-legacy -t "$t" -S >/dev/null 2>&1; done
step "+ empty iptables-legacy tables" "$LAB" host,bridge bridge
clear
step "Docker's tables removed (legacy stays)" "$LAB" host,bridge bridge
docker_rules -t filter
step "Docker's filter table only" "$LAB" host,bridge bridge
clear
docker_rules -t nat
step "Docker's nat table only" "$LAB" host,bridge bridge
clear
if [ -n "${MV_CONTAINER:-}" ]; then
  "$NSLAT" lab up --name "$LAB2" --modes host,macvlan >/dev/null
  NS=nslat-$LAB2-macvlan
  step "macvlan, nothing of Docker's" "$LAB2" host,macvlan macvlan
  PID=$(docker inspect -f '{{.State.Pid}}' "$MV_CONTAINER")
  nsenter -t "$PID" -n iptables-save | ip netns exec "$NS" iptables-nft-restore
  step "macvlan + $MV_CONTAINER's own nat table" "$LAB2" host,macvlan macvlan
  ip netns exec "$NS" nft flush ruleset
  step "macvlan, flushed again" "$LAB2" host,macvlan macvlan
fi
