#!/usr/bin/env bash
# Several nodes on one Redis, measured: three ssehub nodes on one redis-server beside one
# ssehub node without Redis, and three nginx + nchan instances in nchan's Redis mode on
# the same redis-server, with ssehub-soak as the load tool, on loopback, one run each:
#
#   L  3 x 1,000 subscribers (--clients 3000 spread over the nodes), 100 events/s:
#      publish -> receive latency
#   T  the same subscribers, a publisher as fast as the answers come (--publish-rate max,
#      100-byte events): delivered events per second
#
# in the order L single, L ssehub x3, L nchan x3, T single, T ssehub x3, T nchan x3,
# each on freshly started servers and a flushed Redis. The tool samples every node and
# Redis itself (--server-pid, --extra-pid): CPU per delivered event of the nodes
# together, and Redis's own CPU per published event. Redis listens on TCP 127.0.0.1
# for both (nchan's upstream takes redis://host:port). Publishing goes to the first
# node; subscribers are spread round-robin over the three.
#
# Writes bench/cluster.md and puts it into BENCHMARKS.md as the section "Several nodes on
# one Redis" (bench/summarize.py appends bench/cluster.md when it rewrites the page).
# Raw reports, logs and the commands: test-output/bench-cluster/. About 2 minutes.
# Usage: scripts/bench-cluster.sh [--duration SECS (default 15)]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=15
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration=$2; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench-cluster: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

out=test-output/bench-cluster
rm -rf "$out"
mkdir -p "$out/reports" "$out/logs"
cmds="$out/commands.txt"
: >"$cmds"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

nchan_so=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [ ! -f "$nchan_so" ]; then
    echo "bench-cluster: installing nginx and libnginx-mod-nchan" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
fi
command -v redis-server >/dev/null || {
    echo "bench-cluster: installing redis-server" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

echo "bench-cluster: building (release)"
cargo build --release --quiet --workspace --bins
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
ssehub="$target/release/ssehub"
soak="$target/release/ssehub-soak"
built_rev="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src soak Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_health() { # URL PID LOG
    for _ in $(seq 100); do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "bench-cluster: server exited at start:" >&2
            cat "$3" >&2
            return 1
        fi
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
        sleep 0.05
    done
    echo "bench-cluster: server did not answer $1" >&2
    return 1
}

# --- Redis: one for the whole run, flushed before each configuration ------------------
rdir=$(mktemp -d "${TMPDIR:-/tmp}/bench-cluster.XXXXXX")
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$rdir" --save '' --appendonly no \
    >"$out/logs/redis.log" 2>&1 &
redis_pid=$!
pids=()    # processes to stop after a configuration
dirs=()    # nginx prefixes to remove
cleanup() {
    for p in "${pids[@]}" $redis_pid; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$rdir" "${dirs[@]}"
}
trap cleanup EXIT
for _ in $(seq 100); do
    redis-cli -p "$rport" ping >/dev/null 2>&1 && break
    sleep 0.05
done

# Starts KIND (single, ssehub or nchan): sets urls (--url flags), sample (--server-pid and
# --extra-pid flags of the nodes), pub (the publish flags for nchan).
start_kind() { # KIND LOGNAME
    local kind=$1 name=$2 n port pid log
    redis-cli -p "$rport" flushall >/dev/null
    urls=() sample=() pub=() pids=()
    n=$([ "$kind" = single ] && echo 1 || echo 3)
    for i in $(seq "$n"); do
        port=$(free_port)
        log="$out/logs/$name-$i.log"
        if [ "$kind" = nchan ]; then
            local dir
            dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-cluster-nginx.XXXXXX")
            dirs+=("$dir")
            sed -e "s#@DIR@#$dir#g" -e "s#@PORT@#$port#g" -e "s#@REDIS@#127.0.0.1:$rport#g" \
                bench/nginx-redis.conf.in >"$dir/nginx.conf"
            nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$log" 2>&1 &
            pid=$!
            pids+=("$pid")
            wait_health "http://127.0.0.1:$port/health" "$pid" "$log"
            local worker=""
            for _ in $(seq 50); do
                worker=$(pgrep -P "$pid" | head -n1 || true)
                [ -n "$worker" ] && break
                sleep 0.05
            done
            [ -n "$worker" ] || { echo "bench-cluster: no nginx worker" >&2; return 1; }
            sample+=("$([ "$i" = 1 ] && echo --server-pid || echo --extra-pid)" "$worker")
            [ "$i" = 1 ] && pub=(--subscribe-path /sub --publish-url "http://127.0.0.1:$port/pub" --publish-style nchan)
        else
            local redis=()
            [ "$kind" = ssehub ] && redis=(--redis "redis://127.0.0.1:$rport")
            "$ssehub" --bind "127.0.0.1:$port" --no-demo --publish-token bench --heartbeat 0 \
                --quiet --queue 100 --max-clients 12000 "${redis[@]}" >"$log" 2>&1 &
            pid=$!
            pids+=("$pid")
            wait_health "http://127.0.0.1:$port/health" "$pid" "$log"
            sample+=("$([ "$i" = 1 ] && echo --server-pid || echo --extra-pid)" "$pid")
            [ "$i" = 1 ] && pub=(--token bench)
        fi
        urls+=(--url "http://127.0.0.1:$port")
    done
    # Redis is sampled too, last, when the nodes use it.
    [ "$kind" = single ] || sample+=(--extra-pid "$redis_pid")
}

stop_kind() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
    rm -rf "${dirs[@]}"
    dirs=()
}

workload_args() {
    case "$1" in
    L) echo "--clients 3000 --publish-rate 100 --wait-connected --duration $duration --progress 0" ;;
    T) echo "--clients 3000 --publish-rate max --body-size 100 --wait-connected --duration $duration --progress 0" ;;
    esac
}

bench_start=$(date +%s)
for w in L T; do
    for kind in single ssehub nchan; do
        start_kind "$kind" "$w-$kind"
        # shellcheck disable=SC2046
        args=("${urls[@]}" "${pub[@]}" "${sample[@]}" $(workload_args "$w"))
        echo "$w $kind: ssehub-soak ${args[*]}" | tee -a "$cmds"
        status=0
        "$soak" "${args[@]}" >"$out/reports/$w-$kind.json" 2>"$out/logs/soak-$w-$kind.log" || status=$?
        [ "$status" = 0 ] || echo "  (ssehub-soak exit $status: $(tail -n1 "$out/logs/soak-$w-$kind.log"))"
        stop_kind
    done
done
bench_end=$(date +%s)
kill -TERM "$redis_pid"
wait "$redis_pid" || true
redis_pid=""

{
    echo "nproc $(nproc)"
    echo "cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "kernel $(uname -sr)"
    echo "ssehub_rev $built_rev"
    echo "redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
    echo "nginx $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo unknown)"
    echo "duration $duration"
    echo "wall_secs $((bench_end - bench_start))"
    echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
} >"$out/machine.txt"

python3 bench/cluster_summary.py "$out" >bench/cluster.md
# The section goes at the end of BENCHMARKS.md, in place of the one before.
python3 - <<'PY'
page = open("BENCHMARKS.md").read()
mark = "\n## Several nodes on one Redis\n"
if mark in page:
    page = page[: page.index(mark)]
page = page.rstrip("\n") + "\n\n" + open("bench/cluster.md").read()
open("BENCHMARKS.md", "w").write(page)
PY
echo "bench-cluster: wrote bench/cluster.md and its section of BENCHMARKS.md in $((bench_end - bench_start)) s (raw data: $out/)"
