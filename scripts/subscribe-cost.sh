#!/usr/bin/env bash
# Subscribe cost of a URI-template selector against an exact one on the Mercure path
# (#21), N subscribers each: time to connect all, server CPU and RSS, and the CPU per
# delivered event of a broadcast (scripts/subscribe-cost.py does the work; see its
# header). Builds the release binary unless SSEHUB_BIN names one.
#
# Usage: scripts/subscribe-cost.sh [N=10000] [--events K] [--json]
# Smoke run (a few seconds): SSEHUB_BIN=target/debug/ssehub scripts/subscribe-cost.sh 500
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
[ $# -gt 0 ] && shift
if [ -z "${SSEHUB_BIN:-}" ]; then
    cargo build --quiet --release --bin ssehub
    SSEHUB_BIN="${CARGO_TARGET_DIR:-target}/release/ssehub"
fi
ulimit -n "$(( n + 1000 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 scripts/subscribe-cost.py --bin "$SSEHUB_BIN" --n "$n" "$@"
