#!/usr/bin/env bash
# The browser suite in one command: builds the npm package and the devserver, installs
# playwright-core, runs every tests/browser/*.test.mjs with node's test runner against the real
# devserver in headless Chromium (/usr/bin/chromium). Exits non-zero on any failure.
#   tests/browser/run.sh [extra node --test arguments, e.g. --test-name-pattern=echo]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$root/wasm/build.sh"
cargo build --manifest-path "$root/Cargo.toml" -p h2ws-devserver
cd "$root/tests"
npm ci --no-audit --no-fund
node --test "$@" browser/
