#!/usr/bin/env bash
# Side-by-side benchmark: ssehub (the static release binary) against nginx + nchan
# (Debian's packages) and bench/axum-peer (a tokio + axum server built the way ssehub
# is, a measuring stick), on loopback, with ssehub-soak as the load tool; for W2, W3
# and W5 also against the cost floor, bench/floor.c (a bare single-threaded epoll SSE
# broadcast server in C, built here with gcc: what the kernel's loopback path costs
# with next to nothing in user space).
#
# Every workload runs on a freshly started server, alternating ssehub, nchan and axum,
# and the floor after axum in W2, W3 and W5 (rep 1: ssehub W1, nchan W1, axum W1,
# ssehub W2, nchan W2, axum W2, floor W2, ...; then rep 2, rep 3), and BENCHMARKS.md
# (with a chart per workload, bench/charts/W*.svg beside the page) is written from the
# JSON reports of this run only.
#
# Usage: scripts/bench.sh [--quick] [--only W2[,W3...]] [--runs N] [--out FILE]
#                         [--servers ssehub,floor] [--ssehub-bin PATH] [--mercure]
#   --quick   1 run each, shorter durations (for trying it out)
#   --only    run only these workloads (W1..W5, comma separated)
#   --runs N  runs per workload and server (default 3, --quick: 1)
#   --out     the Markdown file to write (default BENCHMARKS.md; --quick and --only
#             default to test-output/bench/BENCHMARKS.md so a full run's file stays)
#   --servers run only these servers (of ssehub, nchan, axum, floor; default all), for
#             a before/after of ssehub beside the floor
#   --ssehub-bin  measure this ssehub binary (a static build of an earlier commit, say)
#             instead of the one built here
#   --mercure also run W2 and W3 with the subscribers on the Mercure path
#             (/.well-known/mercure?topic=soak; server kind ssehub-mercure, right after
#             ssehub in each rep), reported beside the native path: CPU per delivered
#             event and p99, Mercure/native
#   --ssehub-args "FLAGS"  extra flags for ssehub, for an A/B on a quiet machine (e.g.
#             "--threads 0" (one thread, as the floor), "--batch-window 0", "--no-rest")
#   --hog     run `stress-ng --cpu 1` beside every server, the floor included (a busy
#             neighbour on one core; installed with apt-get when missing)
#   --taskset CPUS  run every server (and the hog) under `taskset -c CPUS`
# Needs gcc (for the floor, when W2, W3 or W5 runs). The axum peer is built into
# ${CARGO_TARGET_DIR:-target}/axum-peer. Raw reports, server logs (the floor's ends
# with its frames_per_write count), the floor binary and the commands:
# test-output/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
servers="ssehub,nchan,axum,floor"
mercure=0
ssehub_bin=""
ssehub_args=""
hog=0
pin=""
only="W1,W2,W3,W4,W5"
runs=""
outfile=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --only) only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    --runs) runs=$2; shift ;;
    --runs=*) runs=${1#--runs=} ;;
    --out) outfile=$2; shift ;;
    --out=*) outfile=${1#--out=} ;;
    --servers) servers=$2; shift ;;
    --ssehub-bin) ssehub_bin=$2; shift ;;
    --mercure) mercure=1 ;;
    --ssehub-args) ssehub_args=$2; shift ;;
    --hog) hog=1 ;;
    --taskset) pin=$2; shift ;;
    -h | --help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
only=$(echo "$only" | tr 'a-z' 'A-Z' | tr ',' ' ')
for w in $only; do
    case "$w" in W1 | W2 | W3 | W4 | W5) ;; *) echo "bench: unknown workload $w" >&2; exit 2 ;; esac
done
# The workloads the floor (bench/floor.c) runs in, after axum.
floor_workloads="W2 W3 W5"
floor_runs=0
for w in $only; do
    case " $floor_workloads " in *" $w "*) floor_runs=1 ;; esac
done
[ -n "$runs" ] || runs=$([ "$quick" = 1 ] && echo 1 || echo 3)
if [ -z "$outfile" ]; then
    if [ "$quick" = 1 ] || [ "$only" != "W1 W2 W3 W4 W5" ]; then
        outfile=test-output/bench/BENCHMARKS.md
    else
        outfile=BENCHMARKS.md
    fi
fi

bench_start=$(date +%s)
out=test-output/bench
rm -rf "$out"
mkdir -p "$out/reports" "$out/logs"
cmds="$out/commands.txt"
: >"$cmds"

# 10,000 subscribers need more than the default 1024 open files, in the server and the
# tool (both inherit this shell's limit).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "bench: open files limit $(ulimit -n)"

# --- nginx + nchan ----------------------------------------------------------------------
nchan_so=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [ ! -f "$nchan_so" ]; then
    echo "bench: installing nginx and libnginx-mod-nchan" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
fi

# --- the CPU hog (--hog) -------------------------------------------------------------------
if [ "$hog" = 1 ] && ! command -v stress-ng >/dev/null; then
    echo "bench: installing stress-ng (for --hog)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null
fi
# pinned CMD...: CMD under `taskset -c $pin` with --taskset, else as it is. It execs, so
# `pinned CMD &` leaves $! the server's own pid (measured, and stopped), not a subshell's.
pinned() {
    if [ -n "$pin" ]; then exec taskset -c "$pin" "$@"; else exec "$@"; fi
}
hog_pid=""
start_hog() {
    [ "$hog" = 1 ] || return 0
    pinned stress-ng --cpu 1 --timeout 600s --quiet >/dev/null 2>&1 &
    hog_pid=$!
    sleep 0.2
}
stop_hog() {
    [ -n "$hog_pid" ] || return 0
    kill -TERM "$hog_pid" 2>/dev/null || true
    wait "$hog_pid" 2>/dev/null || true
    hog_pid=""
}

# --- builds -------------------------------------------------------------------------------
# Rebuilt every run: the server changes, and the bench measures the current one.
echo "bench: building (release, and the static release binary)"
cargo build --release --quiet --workspace --bins
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --quiet --target x86_64-unknown-linux-gnu --bin ssehub
# The axum peer: its own Cargo project (never a dependency of ssehub), its own target dir.
echo "bench: building the axum peer (bench/axum-peer, release)"
peer_target="$target/axum-peer"
cargo build --release --quiet --manifest-path bench/axum-peer/Cargo.toml --target-dir "$peer_target"
axum_bin="$peer_target/release/axum-peer"
# The revision that was built (the tree may change while the bench runs).
built_rev="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src soak Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')"
# The cost floor: bench/floor.c, built once (only when a workload it runs in is selected).
floor_bin="$root/$out/floor"
if [ "$floor_runs" = 1 ]; then
    if ! command -v gcc >/dev/null; then
        echo "bench: gcc not found; it is needed to build the cost floor bench/floor.c for" \
            "W2, W3 and W5 (install gcc, or run only --only W1,W4)" >&2
        exit 1
    fi
    echo "bench: building the floor (gcc -O2 -Wall bench/floor.c)"
    gcc -O2 -Wall -o "$floor_bin" bench/floor.c
fi
soak="$target/release/ssehub-soak"
dyn_bin="$target/release/ssehub"
static_bin="$target/x86_64-unknown-linux-gnu/release/ssehub"
if [ -n "$ssehub_bin" ]; then
    static_bin=$ssehub_bin
    built_rev="$ssehub_bin (given with --ssehub-bin)"
fi
servers=" $(echo "$servers" | tr ',' ' ') "
# wanted KIND: whether --servers names it
wanted() { case "$servers" in *" $1 "*) return 0 ;; esac; return 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_health() { # URL PID LOG
    for _ in $(seq 100); do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "bench: server exited at start:" >&2
            cat "$3" >&2
            return 1
        fi
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
        sleep 0.05
    done
    echo "bench: server did not answer $1" >&2
    return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Starts a server (KIND ssehub, nchan, axum or floor); sets srv_pid (the process to
# stop), srv_sample_pid (the process to measure: ssehub itself, nginx's worker, the
# axum peer, the floor),
# port, srv_master_rss, srv_kind, srv_log.
start_server() { # KIND LOGNAME [BINARY]
    local kind=$1 log="$out/logs/$2.log"
    port=$(free_port)
    srv_kind=$kind
    srv_log=$log
    if [ "$kind" = floor ]; then
        # stderr (with the frames_per_write line it prints on SIGTERM) goes to the log.
        pinned "$floor_bin" "$port" 64 >"$log" 2>&1 &
        srv_pid=$!
        wait_health "http://127.0.0.1:$port/health" "$srv_pid" "$log"
        srv_sample_pid=$srv_pid
        srv_master_rss=0
    elif [ "$kind" = axum ]; then
        pinned "$axum_bin" --bind "127.0.0.1:$port" --token bench >"$log" 2>&1 &
        srv_pid=$!
        wait_health "http://127.0.0.1:$port/health" "$srv_pid" "$log"
        srv_sample_pid=$srv_pid
        srv_master_rss=0
    elif [ "$kind" = ssehub ] || [ "$kind" = ssehub-mercure ]; then
        local bin=${3:-$static_bin}
        # shellcheck disable=SC2086
        pinned "$bin" --bind "127.0.0.1:$port" --no-demo --publish-token bench --heartbeat 0 \
            --quiet --queue 100 --max-clients 12000 $ssehub_args >"$log" 2>&1 &
        srv_pid=$!
        wait_health "http://127.0.0.1:$port/health" "$srv_pid" "$log"
        srv_sample_pid=$srv_pid
        srv_master_rss=0
    else
        local dir
        dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-nginx.XXXXXX")
        sed -e "s#@DIR@#$dir#g" -e "s#@PORT@#$port#g" bench/nginx.conf.in >"$dir/nginx.conf"
        pinned nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$log" 2>&1 &
        srv_pid=$!
        srv_dir=$dir
        wait_health "http://127.0.0.1:$port/health" "$srv_pid" "$log"
        srv_sample_pid=""
        for _ in $(seq 50); do
            srv_sample_pid=$(pgrep -P "$srv_pid" | head -n1 || true)
            [ -n "$srv_sample_pid" ] && break
            sleep 0.05
        done
        [ -n "$srv_sample_pid" ] || { echo "bench: no nginx worker" >&2; return 1; }
        srv_master_rss=$(rss_kib "$srv_pid")
    fi
}

stop_server() {
    kill -TERM "$srv_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    if [ -n "${srv_dir:-}" ]; then rm -rf "$srv_dir"; srv_dir=""; fi
    # The floor prints its frames_per_write count when it exits on SIGTERM; without it
    # (killed, crashed) that figure is missing for this run.
    if [ "$srv_kind" = floor ] && ! grep -q frames_per_write "$srv_log"; then
        echo "  (floor did not report frames_per_write: $(tail -n1 "$srv_log"))" >&2
    fi
    srv_pid=""
}
srv_pid=""
srv_dir=""
srv_kind=""
srv_log=""
trap '[ -n "$srv_pid" ] && stop_server; stop_hog' EXIT

# --- footprint: binary sizes and RSS at start of both builds (and of the peers) ------------
footprint="$out/footprint.txt"
{
    echo "size dynamic $(stat -c %s "$dyn_bin")"
    echo "size static $(stat -c %s "$static_bin")"
    echo "size axum $(stat -c %s "$axum_bin")"
    echo "stripped dynamic $(file -b "$dyn_bin" | grep -c 'stripped' || true)"
    echo "stripped static $(file -b "$static_bin" | grep -c 'stripped' || true)"
    echo "linkage static $(file -b "$static_bin" | grep -o 'statically linked' || echo dynamic)"
} >"$footprint"
for r in $(seq "$runs"); do
    for build in dynamic static; do
        bin=$([ "$build" = static ] && echo "$static_bin" || echo "$dyn_bin")
        start_server ssehub "start-$build-$r" "$bin"
        sleep 0.5
        echo "start_rss $build $r $(rss_kib "$srv_sample_pid")" >>"$footprint"
        stop_server
    done
    if wanted nchan; then
        start_server nchan "start-nchan-$r"
        sleep 0.5
        echo "start_rss nchan_worker $r $(rss_kib "$srv_sample_pid")" >>"$footprint"
        echo "start_rss nchan_master $r $(rss_kib "$srv_pid")" >>"$footprint"
        stop_server
    fi
    if wanted axum; then
        start_server axum "start-axum-$r"
        sleep 0.5
        echo "start_rss axum $r $(rss_kib "$srv_sample_pid")" >>"$footprint"
        stop_server
    fi
done

# --- workloads ----------------------------------------------------------------------------
if [ "$quick" = 1 ]; then
    d_w1a=4 d_w1b=6 d_w2=6 d_w3=12 d_w4=8 d_w5=6
else
    # Durations include connecting (publishing starts once all clients are connected,
    # --wait-connected) and the tool's tail (max(duration/10, 1.5 s)), so that the
    # publishing window is about 10 s (W2) and 20 s (W3, W4, W5).
    d_w1a=6 d_w1b=10 d_w2=13 d_w3=28 d_w4=24 d_w5=24
fi

# workload_args W -> the tool's flags for that workload (server independent)
workload_args() {
    case "$1" in
    W1a) echo "--idle --clients 1000 --duration $d_w1a" ;;
    W1b) echo "--idle --clients 10000 --duration $d_w1b" ;;
    W2) echo "--clients 1000 --publish-rate max --body-size 100 --wait-connected --duration $d_w2" ;;
    W3) echo "--clients 10000 --publish-rate 10 --wait-connected --duration $d_w3" ;;
    W4) echo "--clients 100 --slow 100 --publish-rate 100 --body-size 8192 --wait-connected --duration $d_w4" ;;
    W5) echo "--clients 100 --publish-rate 100 --body-size 8192 --wait-connected --duration $d_w5" ;;
    esac
}

server_args() { # KIND IDLE(0/1)
    local base="--url http://127.0.0.1:$port --server-pid $srv_sample_pid --progress 1"
    case "$1" in
    ssehub | axum) # the axum peer speaks ssehub's paths and publish style
        [ "$2" = 1 ] && echo "$base" || echo "$base --token bench" ;;
    ssehub-mercure) # subscribers on the Mercure path, one exact topic; publish as ssehub
        echo "$base --token bench --subscribe-path /.well-known/mercure --topic soak" ;;
    nchan | floor) # the floor speaks nchan's paths and publish style (never idle: not in W1)
        [ "$2" = 1 ] && echo "$base --subscribe-path /sub" ||
            echo "$base --subscribe-path /sub --publish-url http://127.0.0.1:$port/pub --publish-style nchan" ;;
    esac
}

run_one() { # KIND SUBWORKLOAD REP
    local kind=$1 w=$2 r=$3 idle=0
    case "$w" in W1*) idle=1 ;; esac
    start_hog
    start_server "$kind" "$kind-$w-$r"
    local args
    args="$(server_args "$kind" "$idle") $(workload_args "$w")"
    echo "$kind $w run $r: ssehub-soak $args" | tee -a "$cmds"
    local rep="$out/reports/$kind-$w-$r.json"
    local t0 status=0
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    "$soak" $args >"$rep" 2>"$out/logs/soak-$kind-$w-$r.log" || status=$?
    echo "{\"kind\":\"$kind\",\"workload\":\"$w\",\"run\":$r,\"exit\":$status,\"master_rss_kib\":$srv_master_rss,\"wall_ms\":$((($(date +%s%N) - t0) / 1000000))}" \
        >"$out/reports/$kind-$w-$r.meta.json"
    [ "$status" = 0 ] || echo "  (ssehub-soak exit $status: $(tail -n1 "$out/logs/soak-$kind-$w-$r.log"))"
    stop_server
    stop_hog
}

for r in $(seq "$runs"); do
    for w in $only; do
        subs=$w
        [ "$w" = W1 ] && subs="W1a W1b"
        kinds="ssehub nchan axum"
        case " $floor_workloads " in *" $w "*) kinds="ssehub nchan axum floor" ;; esac
        case "$mercure $w" in "1 W2" | "1 W3") kinds=${kinds/ssehub /ssehub ssehub-mercure } ;; esac
        for kind in $kinds; do
            wanted "${kind%-mercure}" || continue
            for s in $subs; do run_one "$kind" "$s" "$r"; done
        done
    done
done

# --- the report ---------------------------------------------------------------------------
bench_end=$(date +%s)
{
    echo "nproc $(nproc)"
    echo "cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "kernel $(uname -sr)"
    echo "memory $(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "ssehub_rev $built_rev"
    echo "nginx $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo unknown)"
    echo "rustc $(rustc -V)"
    echo "axum_peer $(awk '/^name = / {n=$3} /^version = / {gsub(/"/, "", n); v=$3; gsub(/"/, "", v);
        if (n == "axum" || n == "tokio" || n == "hyper") printf "%s%s %s", (o++ ? ", " : ""), n, v}' \
        bench/axum-peer/Cargo.lock)"
    if [ "$floor_runs" = 1 ]; then echo "floor_cc $(gcc --version | head -n1)"; fi
    echo "ssehub_args ${ssehub_args:-none}"
    echo "hog $([ "$hog" = 1 ] && echo "stress-ng --cpu 1 beside every server" || echo none)"
    echo "taskset ${pin:-none}"
    echo "runs $runs"
    echo "quick $quick"
    echo "only $only"
    echo "wall_secs $((bench_end - bench_start))"
    echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
} >"$out/machine.txt"
mkdir -p "$(dirname "$outfile")"
# The charts (one SVG per workload) go to bench/charts/ beside the repository's
# BENCHMARKS.md, and to a charts/ folder beside any other page (so a trial run leaves the
# committed ones alone).
if [ "$(realpath -m "$outfile")" = "$root/BENCHMARKS.md" ]; then
    charts=bench/charts
else
    charts="$(dirname "$outfile")/charts"
fi
python3 bench/summarize.py "$out" --charts "$charts" --page "$outfile" >"$outfile"
echo "bench: wrote $outfile and $charts/W*.svg in $((bench_end - bench_start)) s (raw data: $out/)"
