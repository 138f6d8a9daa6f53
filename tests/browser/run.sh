#!/usr/bin/env bash
# The browser suite in one command: builds the npm package and the devserver, installs the
# drivers (playwright-core, puppeteer-core), runs every tests/browser/*.test.mjs with node's test
# runner against the real devserver in one engine: H2WS_ENGINE=chromium (default), firefox or
# webkit (Debian's chromium, firefox-esr, webkit2gtk-driver + xvfb). Exits non-zero on any failure.
#   [H2WS_ENGINE=firefox] tests/browser/run.sh [extra node --test arguments, e.g. --test-name-pattern=echo]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$root/wasm/build.sh"
cargo build --manifest-path "$root/Cargo.toml" -p h2ws-devserver
cd "$root/tests"
npm ci --no-audit --no-fund
node --test "$@" browser/
