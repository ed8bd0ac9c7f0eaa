#!/usr/bin/env bash
# Headless-browser tests against the real ssehub binary: the live page (GET /) and
# Mercure's conformance cases on the hub path (tests/browser/mercure.test.mjs), the api-platform admin
# pattern: a cookie set by page JavaScript on a credentialed EventSource
# (tests/browser/mercure-cookie.test.mjs), and ssehub.js
# (tests/browser/shared.test.mjs: twelve tabs on one stream, handover, tabs on covered topics,
# token refresh, charts; it writes docs/screenshot.png; tests/browser/parser.test.mjs: its
# event-stream parser, in Node).
#
# Installs what it needs when missing (Debian's chromium, playwright-core and jsonwebtoken
# from the lockfile in tests/browser; playwright never downloads a browser of its own), builds the
# binary, and runs `node --test tests/browser/`. Exits non-zero on any failure.
# Screenshots land in test-output/browser/.
#
# Env: CHROMIUM_BIN (default /usr/bin/chromium), CARGO_TARGET_DIR (honoured; the binary is
# taken from there), SSEHUB_BIN (skip the build and test this binary instead).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

sudo=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo="sudo"; fi
apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

chromium_bin=${CHROMIUM_BIN:-/usr/bin/chromium}
if [ ! -x "$chromium_bin" ]; then
    echo "browser-test: installing chromium (apt)"
    apt_install chromium
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "browser-test: installing nodejs and npm (apt)"
    apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "browser-test: node >= 20 is needed (playwright-core), found $(node --version)" >&2
    exit 1
fi

if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/jsonwebtoken ]; then
    echo "browser-test: installing playwright-core and jsonwebtoken (npm ci)"
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -z "${SSEHUB_BIN:-}" ]; then
    cargo build --quiet --bin ssehub
    export SSEHUB_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/ssehub"
fi
export CHROMIUM_BIN="$chromium_bin"

mkdir -p test-output/browser
# The tests bound every wait themselves; this is only a last-resort cap.
timeout --kill-after=10 600 node --test tests/browser/
echo "browser-test: ok (screenshots in test-output/browser/)"
