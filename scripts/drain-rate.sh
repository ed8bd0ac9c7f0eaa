#!/usr/bin/env bash
# Reconnect rate per 100 ms when N streams see a restart without a handover (#22): the
# jittered drain against --drain-spread 0, in one run (scripts/drain-rate.py does the
# work; see its header). Builds the release binary unless SSEHUB_BIN names one.
#
# Usage: scripts/drain-rate.sh [N=10000] [GRACE=5] [--json]
# Smoke run (a few seconds): SSEHUB_BIN=target/debug/ssehub scripts/drain-rate.sh 500 2
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
grace=${2:-5}
shift $(( $# > 2 ? 2 : $# ))
if [ -z "${SSEHUB_BIN:-}" ]; then
    cargo build --quiet --release --bin ssehub
    SSEHUB_BIN="${CARGO_TARGET_DIR:-target}/release/ssehub"
fi
# Room for N streams (a client closes its ended stream before it reconnects), plus
# the servers' own.
ulimit -n "$(( n + 1000 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 scripts/drain-rate.py --bin "$SSEHUB_BIN" --n "$n" --grace "$grace" "$@"
