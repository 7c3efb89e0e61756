# Long commands of waSCC, named. See README.md.
.PHONY: run test actors lint bench benchmarks

# Builds the example echo actor, signs it with fresh keys and runs the host
# on the embedded default (no NATS) serving it on http://127.0.0.1:$(PORT).
PORT ?= 8080
run:
	PORT=$(PORT) scripts/run-example.sh

# Builds the actors (wasm32) and the example portable provider (wasm32-wasip1)
# and runs every test.
test: actors
	cargo nextest run --workspace --no-fail-fast

actors:
	cargo build --release --target wasm32-unknown-unknown --manifest-path actors/Cargo.toml
	cargo build --release --target wasm32-wasip1 -p memkv --manifest-path actors/Cargo.toml
	cd actors/as-echo && { [ -d node_modules/assemblyscript ] || npm ci --no-audit --no-fund; } && npm run build

lint:
	cargo fmt --all --check
	cd actors && cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd actors && cargo clippy --release --target wasm32-unknown-unknown -- -D warnings
	cd actors && cargo clippy --release --target wasm32-wasip1 -p memkv -- -D warnings

bench: actors
	cargo bench -p wascc-bench --bench suite

# Runs every benchmark (criterion, density, loadgen vs wrk, host vs nginx)
# and regenerates docs/BENCHMARKS.md. Needs wrk and nginx; takes ~15 min.
benchmarks:
	python3 bench/report.py
