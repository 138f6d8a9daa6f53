#!/usr/bin/env bash
# Builds the npm package `h2ws` into wasm/pkg and prints its raw and gzip sizes.
#
#   wasm/build.sh [--release | --dev]   # --release (default): size-optimised; --dev: quick debug build
#   H2WS_DEFLATE=1 wasm/build.sh        # with permessage-deflate (also: H2WS_FEATURES=deflate)
#   H2WS_KEEP_NAMES=1 wasm/build.sh     # keep the wasm's function names (twiggy, CPU profiles:
#                                       # tests/bench/page-profile.mjs); larger, not for shipping
#
# Steps: wasm-pack (cargo profile `release-wasm`: opt-level z, LTO, 1 CGU, panic=abort, symbols
# stripped) → wasm-opt -Oz: npm binaryen in target/tools/binaryen (`cargo xtask setup` installs
# it), else a `wasm-opt` on PATH if it understands reference types (binaryen >= 116; Debian
# bookworm's 108 reads wasm-bindgen's externref table as GC `anyref` and produces a module
# Chromium rejects, so it is skipped) → the JS layer, minified by esbuild (also in target/tools)
# (js/) and package.json rewritten as `h2ws` (ESM entry that loads the wasm on first use, types,
# files). Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$here/pkg"
features="${H2WS_FEATURES:-}"
if [ "${H2WS_DEFLATE:-0}" = 1 ]; then features="deflate"; fi
mode=release
for arg in "$@"; do
  case "$arg" in
    --release) mode=release ;;
    --dev) mode=dev ;;
    *) echo "build.sh: unknown argument '$arg' (use --release or --dev)" >&2; exit 2 ;;
  esac
done

for tool in wasm-pack wasm-bindgen node gzip; do
  command -v "$tool" >/dev/null || { echo "build.sh: '$tool' not found on PATH" >&2; exit 1; }
done

# Without the crate's default `std` feature: the package is no_std (wasm/Cargo.toml, feature std).
cargo_args=(--no-default-features)
if [ -n "$features" ]; then cargo_args+=(--features "$features"); fi

rm -rf "$pkg"
# Strip the name section at link time (-30% raw size) instead of relying on wasm-opt.
keep_names="${H2WS_KEEP_NAMES:-0}"
if [ "$keep_names" = 1 ]; then
  export CARGO_PROFILE_RELEASE_WASM_STRIP=false
else
  export CARGO_PROFILE_RELEASE_WASM_STRIP=true
fi
if [ "$mode" = dev ]; then profile_args=(--dev); else profile_args=(--profile release-wasm); fi
wasm-pack build "$here" --target web "${profile_args[@]}" --out-dir pkg \
  --out-name h2ws_wasm --no-opt --no-gitignore -- "${cargo_args[@]}"

wasm="$pkg/h2ws_wasm_bg.wasm"
wasm_opt="$here/../target/tools/binaryen/node_modules/.bin/wasm-opt"
if [ ! -x "$wasm_opt" ]; then wasm_opt=wasm-opt; fi
binaryen_version=0
if command -v "$wasm_opt" >/dev/null; then
  binaryen_version=$("$wasm_opt" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
fi
if [ "$mode" = dev ]; then
  :
elif [ "${binaryen_version:-0}" -ge 116 ]; then
  # Rust enables these wasm features by default; binaryen must be told about them.
  strip=(--strip-debug --strip-producers)
  if [ "$keep_names" = 1 ]; then strip=(--debuginfo); fi
  "$wasm_opt" -Oz "${strip[@]}" \
    --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
else
  echo "build.sh: wasm-opt ${binaryen_version} missing or older than binaryen 116 (no externref support); skipped (cargo xtask setup installs npm binaryen)" >&2
fi

cp "$here/js/index.js" "$here/js/index.d.ts" "$pkg/"
# Minify both JS modules (release only): whitespace, comments and syntax, and local names; index.js
# keeps function and class names (`H2WebSocket.name`, stack traces). Source: wasm/js/index.js.
esbuild="$here/../target/tools/binaryen/node_modules/.bin/esbuild"
if [ "$mode" = dev ]; then
  :
elif [ -x "$esbuild" ]; then
  for f in h2ws_wasm.js index.js; do
    keep=(); if [ "$f" = index.js ]; then keep=(--keep-names); fi
    "$esbuild" "$pkg/$f" --minify ${keep[@]+"${keep[@]}"} --format=esm --log-level=warning \
      --outfile="$pkg/$f.min"
    mv "$pkg/$f.min" "$pkg/$f"
  done
else
  echo "build.sh: esbuild missing (cargo xtask setup installs it); JS not minified" >&2
fi
cp "$here/README.md" "$pkg/README.md"

node - "$pkg" "$features" <<'NODE'
const fs = require('fs');
const path = require('path');
const [dir, features] = process.argv.slice(2);
const file = path.join(dir, 'package.json');
const generated = JSON.parse(fs.readFileSync(file, 'utf8'));
const pkg = {
  name: 'h2ws',
  version: generated.version,
  description: 'WebSockets over fetch() streams on HTTP/2: H2WebSocket (a WebSocket drop-in) and H2WebSocketStream',
  license: generated.license,
  repository: generated.repository,
  type: 'module',
  main: './index.js',
  module: './index.js',
  types: './index.d.ts',
  exports: {
    '.': { types: './index.d.ts', default: './index.js' },
    // For bundlers that import assets (esbuild's file loader, Vite's ?url): its URL for ready().
    './h2ws_wasm_bg.wasm': './h2ws_wasm_bg.wasm',
    './package.json': './package.json',
  },
  // h2ws_wasm.d.ts types the internal Core: not published (index.d.ts is the API).
  files: ['index.js', 'index.d.ts', 'h2ws_wasm.js', 'h2ws_wasm_bg.wasm', 'README.md'],
  // Importing does no work (the wasm loads on first use), so unused imports may be dropped.
  sideEffects: false,
  // Node that imports it (server renders; measured on 20); sockets there need ready(bytes).
  engines: { node: '>=20' },
  keywords: ['websocket', 'websocketstream', 'http2', 'fetch', 'streams', 'wasm', 'browser'],
  h2wsFeatures: features ? features.split(/[ ,]+/) : [],
};
for (const field of ['license', 'repository']) {
  if (!pkg[field]) { console.error(`build.sh: Cargo metadata has no ${field}`); process.exit(1); }
}
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
for (const f of pkg.files) {
  if (!fs.existsSync(path.join(dir, f))) { console.error(`build.sh: missing ${f}`); process.exit(1); }
}
NODE

# Sizes: what a page downloads (wasm + both JS modules), raw and gzip -9.
total_raw=0
total_gz=0
for f in h2ws_wasm_bg.wasm h2ws_wasm.js index.js; do
  raw=$(wc -c <"$pkg/$f")
  gz=$(gzip -9 -c "$pkg/$f" | wc -c)
  printf '  %-20s %8d bytes  gzip %7d bytes\n' "$f" "$raw" "$gz"
  total_raw=$((total_raw + raw))
  total_gz=$((total_gz + gz))
done
echo "h2ws package ($mode, features: ${features:-none}): raw $total_raw bytes, gzip $total_gz bytes"
