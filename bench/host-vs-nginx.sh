#!/usr/bin/env bash
# The host serving the example echo actor against nginx returning a fixed
# 200 (one worker per core), both driven by wascc-loadgen in the same run:
#   1. each one's maximum rate (closed loop, --rate max, C connections);
#   2. the host at 80 % of its own maximum, open loop, for its p99.
# Prints one JSON object per line and the ratio host/nginx.
# Needs: nginx (Debian package nginx-light).
# Usage: bench/host-vs-nginx.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-64}"
nginx_port=18091
host_port=18092
cores=$(nproc)
dir=$(mktemp -d)
host_pid=
cleanup() {
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
  nginx -p "$dir" -c "$dir/nginx.conf" -s stop 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
cat > "$dir/nginx.conf" <<CONF
worker_processes $cores;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$nginx_port reuseport;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
CONF
nginx -p "$dir" -c "$dir/nginx.conf"

cargo build --release --quiet -p wascc-loadgen
read -r manifest issuer < <(PREPARE_ONLY=1 scripts/run-example.sh)
PORT=$host_port target/release/wascc-host --manifest "$manifest" --trusted-issuer "$issuer" \
  2> "$dir/host.log" &
host_pid=$!
for _ in $(seq 100); do grep -q "host ready" "$dir/host.log" && break; sleep 0.1; done
grep -q "host ready" "$dir/host.log" || { cat "$dir/host.log"; exit 1; }

lg=target/release/wascc-loadgen
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
nginx_max=$("$lg" http "http://127.0.0.1:$nginx_port/" --rate max --connections "$conns" --duration "$secs" --json)
host_max=$("$lg" http "http://127.0.0.1:$host_port/echo" --rate max --connections "$conns" --duration "$secs" --json)
n=$(printf '%s' "$nginx_max" | field achieved_rps)
h=$(printf '%s' "$host_max" | field achieved_rps)
rate=$(python3 -c "print(int($h * 0.8))")
host_80=$("$lg" http "http://127.0.0.1:$host_port/echo" --rate "$rate" --connections "$conns" --duration "$secs" --json)
echo "nginx max ($cores workers, -c$conns): $nginx_max"
echo "host max ($cores shards, -c$conns): $host_max"
echo "host at 80% of its max ($rate req/s): $host_80"
python3 -c "print(f'host/nginx = {$h / $n:.2f}; host p99 at 80% = {$(printf '%s' "$host_80" | field p99_us) / 1000:.2f} ms')"
