# Sourced by the scripts in this folder: pinned versions and the environment that keeps
# worker-build and wrangler from reaching anything but the package registries.
# (../shared/TOOLCHAIN.md has the measurements behind these choices.)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WORKER_BUILD_VERSION=0.8.7
export WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen = "=..."` pin in Cargo.toml
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

# worker-build looks for <NAME>_BIN before its cache and before downloading.
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"

# wrangler: no telemetry, no fetch of the request.cf placeholder.
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false

log() { printf '\033[1m[roomgate]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[roomgate] error:\033[0m %s\n' "$*" >&2; exit 1; }
