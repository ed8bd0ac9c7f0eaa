#!/usr/bin/env bash
# Runs every test of ssehub on a fresh Debian machine: installs the real clients the
# tests drive (curl, nc, redis-server, Chromium) when they are missing, then runs the unit,
# integration, doc and browser tests. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
# Real Redis for the broker's tests (each test starts its own on a unix socket).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  apt_install "${need[@]}"
fi

# Subscribers in the tests each hold a descriptor.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

cargo test --all-targets
cargo test --doc

# The live page in headless Chromium (installs chromium and playwright-core if missing).
scripts/browser-test.sh
