#!/usr/bin/env bash
# Soak test: the release server against ssehub-soak on loopback for DURATION seconds,
# with churn, never-reading clients and Last-Event-ID reconnects. Fails when any check
# fails (gaps or duplicates at healthy clients, slow clients not evicted, RSS or fd
# growth over the thresholds) or when the server does not exit 0 on SIGTERM.
# Usage: scripts/soak.sh [DURATION=60] [extra ssehub-soak flags]
# The JSON report goes to test-output/soak/report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
shift || true

cargo build --release --quiet --bins
out=test-output/soak
mkdir -p "$out"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

target=${CARGO_TARGET_DIR:-target}
"$target/release/ssehub" --bind 127.0.0.1:0 --no-demo --publish-token soak \
    --heartbeat 1 --history 1000 --history-bytes 2097152 2>"$out/server.log" &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    grep -q 'listening on' "$out/server.log" && break
    sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out/server.log" | head -n1)
[ -n "$port" ] || { echo "soak: server did not start" >&2; cat "$out/server.log" >&2; exit 1; }

status=0
"$target/release/ssehub-soak" --url "http://127.0.0.1:$port" --token soak \
    --clients 200 --slow 5 --churn 5 --reconnect 2 --publish-rate 200 --body-size 8192 \
    --duration "$duration" --server-pid "$pid" \
    --max-rss-growth-kib 8192 --max-fd-growth 16 "$@" >"$out/report.json" || status=$?

kill -TERM "$pid"
server_status=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" || server_status=$?
trap - EXIT
python3 - "$out/report.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
keep = ("ok", "failed_checks", "events_published", "events_received", "gaps", "duplicates",
        "out_of_order", "latency_ms", "slow", "churn", "reconnect", "server")
print(json.dumps({k: r[k] for k in keep if k in r}, indent=1))
PY
echo "soak: ssehub-soak exit $status, server exit $server_status (report: $out/report.json)"
[ "$status" = 0 ] && [ "$server_status" = 0 ]
