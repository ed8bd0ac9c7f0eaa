#!/usr/bin/env bash
# Soak test: the release server against ssehub-soak on loopback, DURATION seconds in all,
# in three runs of a third each:
#  1. churn, never-reading clients and Last-Event-ID reconnects; fails when any check
#     fails (gaps or duplicates at healthy clients, slow clients not evicted, RSS or fd
#     growth over the thresholds) or when the server does not exit 0 on SIGTERM;
#  2. restart mode, in-memory history: ssehub-soak restarts the server (SIGTERM) on the
#     same port a third into the run; every subscriber resumes with Last-Event-ID and
#     must get a reset event (other-epoch) before any gap, never a silent one;
#  3. restart mode with --history-file, the server killed (SIGKILL): every subscriber
#     must continue with exactly the events it missed (no reset, no gap);
#  4. upgrade mode: three SIGUSR2 handovers to a successor (the tool follows the new
#     pid): 0 reconnects, 0 gaps, 0 duplicates; the report has each handover's time
#     (signal to the old process's exit); then the same with --history-file (the lock
#     passes to each successor);
#  5. upgrade mode with a successor that fails at start: the old server serves on,
#     0 reconnects, 0 gaps.
# Usage: scripts/soak.sh [DURATION=60] [extra ssehub-soak flags for run 1]
# SOAK_UPGRADE_CLIENTS (default 1000) sets the subscribers of runs 4 and 5.
# The JSON reports go to test-output/soak/{report,restart-*,upgrade-*}.json.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
shift || true
part=$(python3 -c "print(max(10, round($duration / 3)))")
restart_at=$(python3 -c "print(round($part * 0.4, 1))")

cargo build --release --quiet --workspace --bins
out=test-output/soak
mkdir -p "$out"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

target=${CARGO_TARGET_DIR:-target}
server_flags=(--no-demo --publish-token soak --heartbeat 1 --history 1000 --history-bytes 2097152)
"$target/release/ssehub" --bind 127.0.0.1:0 "${server_flags[@]}" 2>"$out/server.log" &
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
    --duration "$part" --server-pid "$pid" \
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

# Restart mode: the tool runs the server itself, on a port picked now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# restart NAME SIGNAL EXPECT [server flags]: one restart run; EXPECT is what the
# resumes must show: "reset" (every steady client got an other-epoch reset) or
# "continue" (no reset at all).
restart() {
    local name=$1 signal=$2 expect=$3
    shift 3
    local p
    p=$(free_port)
    local rc=0
    "$target/release/ssehub-soak" --url "http://127.0.0.1:$p" --token soak \
        --clients 200 --churn 5 --reconnect 2 --publish-rate 200 --body-size 8192 \
        --duration "$part" --progress 0 \
        --server-cmd "$target/release/ssehub --bind 127.0.0.1:$p ${server_flags[*]} --grace 2 $*" \
        --restart-after "$restart_at" --restart-signal "$signal" \
        --server-log "$out/$name.log" >"$out/$name.json" || rc=$?
    python3 - "$out/$name.json" "$expect" "$rc" <<'PY' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
expect, rc = sys.argv[2], int(sys.argv[3])
c, rs = r["checks"], r["restart"]
resets = sum(c["resets"].values())
print(json.dumps({"ok": r["ok"], "failed_checks": r["failed_checks"], "gaps": c["gaps"],
                  "announced_gaps": c["announced_gaps"], "resets": c["resets"],
                  "duplicates": c["duplicates"], "reconnect_gaps": r["reconnect"]["gaps"],
                  "restart": rs, "latency_ms": r["latency_ms"]}, indent=1))
bad = []
if rc != 0 or not r["ok"]:
    bad.append(f"ssehub-soak exit {rc}: {r['failed_checks']}")
if rs["restarts"] != 1:
    bad.append(f"{rs['restarts']} restarts")
if expect == "reset" and c["resets"]["other-epoch"] < r["clients"]["requested"]:
    bad.append(f"only {c['resets']['other-epoch']} other-epoch resets")
if expect == "continue" and resets != 0:
    bad.append(f"{resets} resets with a history file")
if bad:
    sys.exit("soak restart: " + "; ".join(bad))
PY
}

restart_status=0
restart restart-memory term reset || restart_status=1
rm -f "$out/history" "$out/history.tmp"
restart restart-file kill continue --history-file "$out/history" || restart_status=1
echo "soak: restart runs $([ $restart_status = 0 ] && echo passed || echo FAILED) (reports: $out/restart-*.json)"

# upgrade NAME SIGNAL COUNT [server flags]: COUNT handovers (usr2) or failed handovers
# (usr2-fail) in a run of a third of DURATION; every check must pass (the tool itself
# fails a run with a reconnect or a duplicate in upgrade mode).
upgrade() {
    local name=$1 signal=$2 count=$3
    shift 3
    local p every
    p=$(free_port)
    every=$(python3 -c "print(round($part * 0.6 / $count, 1))")
    local rc=0
    "$target/release/ssehub-soak" --url "http://127.0.0.1:$p" --token soak \
        --clients "${SOAK_UPGRADE_CLIENTS:-1000}" --publish-rate 200 --body-size 512 \
        --duration "$part" --progress 0 \
        --server-cmd "$target/release/ssehub --bind 127.0.0.1:$p ${server_flags[*]} $*" \
        --restart-after "$every" --restarts "$count" --restart-signal "$signal" \
        --server-log "$out/$name.log" >"$out/$name.json" || rc=$?
    python3 - "$out/$name.json" "$rc" <<'PY' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
c, rs = r["checks"], r["restart"]
print(json.dumps({"ok": r["ok"], "failed_checks": r["failed_checks"], "gaps": c["gaps"],
                  "duplicates": c["duplicates"], "restart": rs}, indent=1))
if rc != 0 or not r["ok"] or rs["restarts"] != rs["planned"]:
    sys.exit(f"soak upgrade: exit {rc}, {rs['restarts']} of {rs['planned']}: {r['failed_checks']}")
PY
}

upgrade_status=0
upgrade upgrade-memory usr2 3 || upgrade_status=1
rm -f "$out/history-up" "$out/history-up.tmp" "$out/history-up.lock"
upgrade upgrade-file usr2 3 --history-file "$out/history-up" || upgrade_status=1
upgrade upgrade-fail usr2-fail 1 || upgrade_status=1
echo "soak: upgrade runs $([ $upgrade_status = 0 ] && echo passed || echo FAILED) (reports: $out/upgrade-*.json)"
[ "$status" = 0 ] && [ "$server_status" = 0 ] && [ "$restart_status" = 0 ] && [ "$upgrade_status" = 0 ]
