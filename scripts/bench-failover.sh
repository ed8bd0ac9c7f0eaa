#!/usr/bin/env bash
# Failover benchmark (#23): a master, two replicas and three sentinels on loopback
# (scripts/sentinel-set.sh: `down-after-milliseconds 1000`, `failover-timeout 4000`),
# three release ssehub nodes on the redis-sentinel:// URL, subscribers on every node and a
# publisher per node, RATE events/s in all (scripts/bench-failover.py); after
# BEFORE seconds the master is killed (kill -9). For REPS repetitions each, without and
# with `--redis-wait-replicas 1`, a fresh set every time:
#   (a) recovery: seconds from the kill to the first event published after it that a
#       subscriber got, on the slowest node;
#   (b) lost: events answered 200 to the publisher that a subscriber never got;
#   (c) publish p50/p99 without and with `--redis-wait-replicas 1`: one steady run each
#       (no kill), SUBS subscribers, P99_SECS seconds.
# Medians over the repetitions, as a Markdown table on stdout and in
# test-output/bench-failover/results.md (each run's JSON and the logs beside it).
# Usage: scripts/bench-failover.sh   (REPS=5 RATE=100 BEFORE=2 AFTER=9 SUBS=100 P99_SECS=10)
# One full run takes about 3.5 minutes. Every process it starts is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-5}
rate=${RATE:-100}
before=${BEFORE:-2}
after=${AFTER:-9}
subs=${SUBS:-100}
p99_secs=${P99_SECS:-10}

cargo build --release --quiet --bin ssehub
target=${CARGO_TARGET_DIR:-target}
out=test-output/bench-failover
rm -rf "$out"
mkdir -p "$out/runs"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

top=$(mktemp -d "${TMPDIR:-/tmp}/ssehub-bench-failover.XXXXXX")
ss_dir=""
ss_log=""
# shellcheck source=scripts/sentinel-set.sh
. scripts/sentinel-set.sh
node_pids=()
cleanup() {
    for p in "${node_pids[@]}" "${ss_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$top"
}
trap cleanup EXIT

node_cmd="$target/release/ssehub --bind 127.0.0.1:0 --redis URL --no-demo --publish-token bench --heartbeat 1 --history 10000"

# set_up NAME [ssehub flags…]: a fresh sentinel set and three nodes; sets urls=(…).
set_up() {
    local name=$1 i log port
    shift
    ss_dir="$top/$name"
    ss_log="$out/logs/$name"
    mkdir -p "$ss_dir" "$ss_log"
    ss_redis_ports=() ss_redis_pids=() ss_sentinel_ports=() ss_pids=()
    ss_start
    node_pids=()
    urls=()
    for i in 1 2 3; do
        # shellcheck disable=SC2086
        ${node_cmd/URL/$ss_url} "$@" 2>"$ss_log/node-$i.log" &
        node_pids+=($!)
    done
    for i in 1 2 3; do
        log="$ss_log/node-$i.log"
        for _ in $(seq 50); do
            grep -q 'listening on' "$log" && break
            sleep 0.1
        done
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
        [ -n "$port" ] || { echo "bench-failover: node $i did not start" >&2; cat "$log" >&2; exit 1; }
        urls+=(--url "http://127.0.0.1:$port")
        for _ in $(seq 100); do
            [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && break
            sleep 0.1
        done
    done
}

tear_down() {
    local p
    for p in "${node_pids[@]}" "${ss_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    # (braces: bash reports a killed job when it is reaped, not when wait fails)
    for p in "${node_pids[@]}" "${ss_pids[@]}"; do { wait "$p"; } 2>/dev/null || true; done
    node_pids=() ss_pids=()
    rm -rf "$ss_dir"
}

bench="python3 scripts/bench-failover.py --token bench --rate $rate"
for wait in 0 1; do
    flags=()
    [ "$wait" = 0 ] || flags=(--redis-wait-replicas 1)
    for rep in $(seq "$reps"); do
        name="kill-wait$wait-$rep"
        set_up "$name" "${flags[@]}"
        $bench "${urls[@]}" --subscribers 3 --before "$before" --after "$after" \
            --kill-pid "${ss_redis_pids[0]}" >"$out/runs/$name.json"
        tear_down
        echo "bench-failover: $name $(cat "$out/runs/$name.json")" >&2
    done
    name="steady-wait$wait"
    set_up "$name" "${flags[@]}"
    $bench "${urls[@]}" --subscribers "$subs" --before "$p99_secs" --after 0 \
        >"$out/runs/$name.json"
    tear_down
    echo "bench-failover: $name $(cat "$out/runs/$name.json")" >&2
done

python3 - "$out" "$reps" "$rate" "$before" "$after" "$subs" "$p99_secs" "$node_cmd" <<'PY' | tee "$out/results.md"
import json, os, statistics, sys
out, reps, rate, before, after, subs, p99_secs, node_cmd = sys.argv[1:]
def load(name):
    return json.load(open(os.path.join(out, "runs", name + ".json")))
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def f(x, d=2):
    return "–" if x is None else (f"{x:.{d}f}" if isinstance(x, float) else str(x))
print(f"## Failover: kill -9 of the master (median of {reps})\n")
print("| `--redis-wait-replicas` | recovery, slowest node (s) | recovery, all runs (s) "
      "| acked but lost (events) | lost, all runs | `lost` resets (subscribers) "
      "| 503/errors during the switch | publish p99 across it (ms) |")
print("|---|---|---|---|---|---|---|---|")
for wait in (0, 1):
    runs = [load(f"kill-wait{wait}-{r}") for r in range(1, int(reps) + 1)]
    rec = [r["recovery_max"] for r in runs]
    lost = [r["lost"] for r in runs]
    print(f"| {wait} | {f(med(rec))} | {' '.join(f(x) for x in rec)} | {f(med(lost), 1)} "
          f"| {' '.join(str(x) for x in lost)} | {f(med([r['lost_resets'] for r in runs]), 1)} "
          f"| {f(med([r['refused'] + r['errors'] for r in runs]), 1)} "
          f"| {f(med([r['publish_ms']['p99'] for r in runs]))} |")
print(f"\n## Publish latency, no failover ({subs} subscribers, {rate} events/s, {p99_secs} s, one run)\n")
print("| `--redis-wait-replicas` | p50 (ms) | p99 (ms) | max (ms) | acked | lost |")
print("|---|---|---|---|---|---|")
for wait in (0, 1):
    r = load(f"steady-wait{wait}")
    p = r["publish_ms"]
    print(f"| {wait} | {f(p['p50'])} | {f(p['p99'])} | {f(p['max'])} | {r['acked']} | {r['lost']} |")
print("\nCommands (fresh set for every run):\n")
print("```sh")
print("# master, then two replicas (--replicaof 127.0.0.1 MASTER_PORT):")
print("redis-server --port P --bind 127.0.0.1 --save '' --appendonly no --repl-diskless-sync-delay 0")
print("# three sentinels: sentinel monitor mymaster 127.0.0.1 MASTER_PORT 2; "
      "down-after-milliseconds 1000; failover-timeout 4000; parallel-syncs 2")
print(f"{node_cmd.replace('URL', 'redis-sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster')}"
      " [--redis-wait-replicas 1]   # three nodes")
print(f"python3 scripts/bench-failover.py --token bench --rate {rate} --url … --url … --url … "
      f"--subscribers 3 --before {before} --after {after} --kill-pid MASTER_PID")
print(f"python3 scripts/bench-failover.py --token bench --rate {rate} --url … --url … --url … "
      f"--subscribers {subs} --before {p99_secs} --after 0")
print("```")
PY
