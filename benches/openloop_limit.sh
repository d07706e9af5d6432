#!/usr/bin/env bash
# The open-loop generator's own limit: `nslat serve` on the loopback, then open-loop runs at
# rising rates (examples/openloop_limit.rs; client on CPU 0, server data threads on SERVER_CPU:
# 0 by default, one CPU, as `nslat sweep rate` pins them). The generator's limit is the highest rate whose achieved rate
# stays within 1% of the offered one; a rate sweep's curves mean something only below it.
#
# Usage: benches/openloop_limit.sh [RATES=5000,10000,20000,40000,80000,160000] [SECS=2] [CONNECTIONS=1] [SERVER_CPU=0]
# (no root needed: loopback only). NSLAT=path/to/nslat to use another binary.
set -euo pipefail
RATES=${1:-5000,10000,20000,40000,80000,160000}
SECS=${2:-2}
CONNS=${3:-1}
SERVER_CPU=${4:-0}
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "openloop_limit.sh: $*" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (client on 0, server on 1)"
NSLAT=${NSLAT:-$repo/target/release/nslat}
(cd "$repo" && cargo build --release --quiet --example openloop_limit) || die "building the example failed"
[ -x "$NSLAT" ] || (cd "$repo" && cargo build --release --quiet) || die "building nslat failed"
port=$((20000 + RANDOM % 20000))
"$NSLAT" serve --listen "127.0.0.1:$port" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
echo "# $(date -u +%FT%TZ) $(uname -r) load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$repo/target/release/examples/openloop_limit" "127.0.0.1:$port" "$RATES" "$SECS" "$CONNS" "$SERVER_CPU"
