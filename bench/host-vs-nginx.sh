#!/usr/bin/env bash
# The host serving the example echo actor against nginx returning a fixed
# 200, both driven by wascc-loadgen in the same run:
#   1. each one's maximum rate (closed loop, --rate max, C connections);
#   2. the host at 80 % of its own maximum, open loop, for its p99.
# The servers get the same cores (all but the last: one nginx worker or one
# host shard per core) and the load generator the last core, so that it
# never competes with the server it measures. Prints one JSON object per
# line and the ratio host/nginx.
# Needs: nginx (Debian package nginx-light).
# Usage: bench/host-vs-nginx.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-64}"
nginx_port=18091
host_port=18092
ncpu=$(nproc)
if [ "$ncpu" -lt 2 ]; then echo "needs at least 2 CPUs (servers and load generator apart)" >&2; exit 1; fi
cores=$((ncpu - 1))
server_cpus="0-$((cores - 1))"
client_cpu="$((ncpu - 1))"
lg() { taskset -c "$client_cpu" target/release/wascc-loadgen "$@"; }
dir=$(mktemp -d)
host_pid=
cleanup() {
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
  stop_nginx "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT
. bench/nginx.sh
taskset -c "$server_cpus" bash -c ". bench/nginx.sh; start_nginx '$dir' '$nginx_port' '$cores'"

cargo build --release --quiet -p wascc-loadgen
read -r manifest issuer < <(PREPARE_ONLY=1 scripts/run-example.sh)
PORT=$host_port taskset -c "$server_cpus" target/release/wascc-host --manifest "$manifest" --trusted-issuer "$issuer" \
  2> "$dir/host.log" &
host_pid=$!
for _ in $(seq 100); do grep -q "host ready" "$dir/host.log" && break; sleep 0.1; done
grep -q "host ready" "$dir/host.log" || { cat "$dir/host.log"; exit 1; }

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
nginx_max=$(lg http "http://127.0.0.1:$nginx_port/" --rate max --connections "$conns" --duration "$secs" --json)
host_max=$(lg http "http://127.0.0.1:$host_port/echo" --rate max --connections "$conns" --duration "$secs" --json)
n=$(printf '%s' "$nginx_max" | field achieved_rps)
h=$(printf '%s' "$host_max" | field achieved_rps)
rate=$(python3 -c "print(int($h * 0.8))")
host_80=$(lg http "http://127.0.0.1:$host_port/echo" --rate "$rate" --connections "$conns" --duration "$secs" --json)
echo "nginx max ($cores workers on CPUs $server_cpus, load from CPU $client_cpu, -c$conns): $nginx_max"
echo "host max ($cores shards on CPUs $server_cpus, load from CPU $client_cpu, -c$conns): $host_max"
echo "host at 80% of its max ($rate req/s): $host_80"
python3 -c "print(f'host/nginx = {$h / $n:.2f}; host p99 at 80% = {$(printf '%s' "$host_80" | field p99_us) / 1000:.2f} ms')"
