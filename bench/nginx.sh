# Sourced by the bench scripts: start_nginx DIR PORT WORKERS starts nginx
# (Debian nginx-light) with its files in DIR, listening on 127.0.0.1:PORT
# with WORKERS workers, answering every request with a fixed 200 "ok";
# stop_nginx DIR stops it.
start_nginx() {
  local dir=$1 port=$2 workers=$3
  cat > "$dir/nginx.conf" <<CONF
worker_processes $workers;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port reuseport;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf"
}

stop_nginx() {
  nginx -p "$1" -c "$1/nginx.conf" -s stop 2>/dev/null || true
}
