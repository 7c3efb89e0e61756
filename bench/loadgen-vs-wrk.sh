#!/usr/bin/env bash
# Checks that wascc-loadgen is not the bottleneck it measures: on one thread
# it must drive at least as many requests per second as `wrk -t1` against
# the same nginx (one worker, fixed 200), measured in the same run.
# Needs: wrk, nginx (Debian packages wrk, nginx-light).
# Usage: bench/loadgen-vs-wrk.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
conns="${2:-16}"
port=18090
dir=$(mktemp -d)
. bench/nginx.sh
trap 'stop_nginx "$dir"; rm -rf "$dir"' EXIT
start_nginx "$dir" "$port" 1
sleep 0.5
cargo build --release --quiet -p wascc-loadgen
url="http://127.0.0.1:$port/"
for round in 1 2; do
  wrk_rps=$(wrk -t1 -c"$conns" -d"${secs}s" "$url" | awk '/Requests\/sec/ {print $2}')
  lg=$(target/release/wascc-loadgen http "$url" --rate max --connections "$conns" --duration "$secs" --json)
  lg_rps=$(printf '%s' "$lg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["achieved_rps"])')
  ratio=$(python3 -c "print(f'{$lg_rps / $wrk_rps:.2f}')")
  echo "round $round: wrk -t1 -c$conns ${wrk_rps} req/s; wascc-loadgen -c$conns ${lg_rps} req/s; loadgen/wrk = $ratio; loadgen: $lg"
done
