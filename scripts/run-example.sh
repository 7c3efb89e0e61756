#!/usr/bin/env bash
# Builds the echo actor from actors/, signs it with keys generated on first
# use (kept in target/example/, never committed), writes a manifest and runs
# wascc-host serving it on 127.0.0.1:$PORT (default 8080). With
# PREPARE_ONLY=1 it builds and signs, prints "MANIFEST ISSUER" and exits
# (bench/host-vs-nginx.sh uses that).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8080}"
out=target/example
mkdir -p "$out"

cargo build --release --quiet --target wasm32-unknown-unknown --manifest-path actors/Cargo.toml -p echo
cargo build --release --quiet -p wcc -p wascc-runtime
wcc=target/release/wcc

[ -f "$out/account.seed" ] || "$wcc" keys gen account --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["seed"])' > "$out/account.seed"
[ -f "$out/echo.seed" ] || "$wcc" keys gen module --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["seed"])' > "$out/echo.seed"
chmod 600 "$out"/*.seed

"$wcc" claims sign actors/target/wasm32-unknown-unknown/release/echo.wasm -o "$out/echo_signed.wasm" \
  --issuer "$out/account.seed" --subject "$out/echo.seed" --name "Echo" --cap wascc:http_server --tag example
info=$("$wcc" claims inspect "$out/echo_signed.wasm" --json)
actor=$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["subject"])')
issuer=$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["issuer"])')

cat > "$out/echo.yaml" <<YAML
labels:
  example: echo
actors:
  - echo_signed.wasm
capabilities:
  - id: wascc:http_server
bindings:
  - actor: $actor
    capability: wascc:http_server
    values:
      PORT: "\${PORT}"
      ADDR: 127.0.0.1
YAML

if [ "${PREPARE_ONLY:-}" = 1 ]; then
  echo "$out/echo.yaml $issuer"
  exit 0
fi
echo "serving the echo actor $actor on http://127.0.0.1:$PORT (Ctrl-C stops)" >&2
PORT="$PORT" exec target/release/wascc-host --manifest "$out/echo.yaml" --trusted-issuer "$issuer"
