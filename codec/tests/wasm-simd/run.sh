#!/usr/bin/env bash
# Runs the codec's masking (simd128 path) and UTF-8 validation inside wasm32 with
# `-C target-feature=+simd128`, under Node, against the scalar reference.
# Needs: the wasm32-unknown-unknown target and node.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${CARGO_TARGET_DIR:-$here/../../../target}/wasm-simd-check"
RUSTFLAGS="-C target-feature=+simd128" cargo build --quiet --release \
  --manifest-path "$here/Cargo.toml" --target wasm32-unknown-unknown --target-dir "$target"
wasm="$target/wasm32-unknown-unknown/release/h2ws_codec_wasm_simd_check.wasm"
if command -v wasm-dis >/dev/null && [ "$(wasm-dis "$wasm" | grep -c v128.xor)" = 0 ]; then
  echo "simd128 masking was not compiled in" >&2
  exit 1
fi
node "$here/run.js" "$wasm"
