#!/usr/bin/env bash
# Checks the capacity model of docs/capacity.md against ssehub at N subscribers on
# loopback: for each N, a fresh server, then
#   1. idle: N streams (scripts/idle-rss.py): the server's RSS per subscriber and the
#      kernel's memory per connection (the socket caches of /proc/slabinfo, else `Slab`
#      of /proc/meminfo; TCP `mem` of /proc/net/sockstat), before and after connecting;
#   2. one event per second broadcast to all N (ssehub-soak --publish-rate 1): the
#      server's CPU per delivered frame.
# Each measured term is compared with the model's prediction (the constants below, the
# same as docs/capacity.md's table); the model holds when every memory and CPU term is
# within 15 % at every N. Exit status 1 when one is not.
#
# Usage: scripts/capacity-check.sh [N ...]      (default: 2000 5000 10000 19000)
#   e.g. scripts/capacity-check.sh 2000        a smoke run (about half a minute)
# Environment: SSEHUB_BIN (default target/release/ssehub, built here), SECS (the
# event phase's length, default 20), TOLERANCE (default 0.15).
# Raw reports: test-output/capacity/. Needs python3 and `ulimit -n` of N + 100 (this
# machine's hard cap of 20,000 descriptors per process bounds N at about 19,900).
set -euo pipefail
cd "$(dirname "$0")/.."

# --- the model (docs/capacity.md, "The terms"); change both together -----------------
# ssehub's RSS with N idle (resting) subscribers = RSS at start + FIXED + N x USER.
# FIXED: what grows once (the watch's first slots, the registry's inner nodes, the
# allocator's arenas). Unit: KiB. USER: one subscriber. Unit: bytes.
MODEL_FIXED_KIB=${MODEL_FIXED_KIB:-266}
MODEL_USER_BYTES=${MODEL_USER_BYTES:-420}
# Kernel memory of one connection on loopback, both ends (twice a server's socket), in
# the socket slab caches of /proc/slabinfo (TCP, sock_inode_cache, dentry, filp,
# eventpoll_*; `Slab` of /proc/meminfo when it cannot be read). Unit: bytes.
MODEL_KERNEL_BYTES=${MODEL_KERNEL_BYTES:-7800}
# Server CPU per frame delivered by the broadcast's direct writes, on loopback (it
# includes the kernel's delivery to the local client). Unit: microseconds.
MODEL_CPU_US_PER_FRAME=${MODEL_CPU_US_PER_FRAME:-9.5}
# Server CPU per broadcast that does not grow with N (the publish, the fan-out's setup,
# the once-a-second ticks at 1 event/s), spread over its N frames. Unit: microseconds.
MODEL_CPU_US_PER_EVENT=${MODEL_CPU_US_PER_EVENT:-1000}

ns=("$@")
[ ${#ns[@]} -gt 0 ] || ns=(2000 5000 10000 19000)
secs=${SECS:-20}
tol=${TOLERANCE:-0.15}
out=test-output/capacity
mkdir -p "$out"

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ -z "${SSEHUB_BIN:-}" ]; then
    cargo build --release --quiet --bin ssehub -p ssehub -p ssehub-soak --bins
    SSEHUB_BIN=target/release/ssehub
fi
soak=${CARGO_TARGET_DIR:-target}/release/ssehub-soak
[ -x "$soak" ] || cargo build --release --quiet -p ssehub-soak

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

srv_pid=""
stop_server() {
    [ -n "$srv_pid" ] || return 0
    kill -TERM "$srv_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=""
}
trap stop_server EXIT

start_server() { # N
    port=$(free_port)
    "$SSEHUB_BIN" --bind "127.0.0.1:$port" --no-demo --publish-token cap --heartbeat 0 \
        --quiet --max-clients $(($1 + 100)) >"$out/server-$1.log" 2>&1 &
    srv_pid=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/health" && return 0
        sleep 0.05
    done
    echo "capacity-check: the server did not start" >&2
    exit 1
}

printf '%-7s %-22s %-24s %-26s %s\n' N "user B/sub (model)" "kernel B/conn (model)" "CPU us/frame (model)" verdict
failed=0
for n in "${ns[@]}"; do
    start_server "$n"
    sleep 0.3
    python3 scripts/idle-rss.py "$srv_pid" "$port" "$n" --json >"$out/idle-$n.json"
    stop_server
    start_server "$n"
    "$soak" --url "http://127.0.0.1:$port" --token cap --server-pid "$srv_pid" --progress 0 \
        --clients "$n" --publish-rate 1 --wait-connected --duration "$secs" \
        >"$out/events-$n.json" 2>"$out/soak-$n.log" || true
    stop_server
    line=$(python3 - "$out/idle-$n.json" "$out/events-$n.json" "$MODEL_USER_BYTES" \
        "$MODEL_KERNEL_BYTES" "$MODEL_CPU_US_PER_FRAME" "$tol" "$MODEL_FIXED_KIB" \
        "$MODEL_CPU_US_PER_EVENT" <<'EOF'
import json, sys
idle = json.load(open(sys.argv[1]))
ev = json.load(open(sys.argv[2]))
m_user, m_kernel, m_cpu, tol, fixed, per_event = (float(a) for a in sys.argv[3:9])
n = idle["subscribers"]
# Per subscriber, as measured: (RSS after - RSS at start) / N; predicted likewise.
m_user = m_user + fixed * 1024 / n
# Per frame: the frame's own cost and its share of the broadcast's fixed cost.
m_cpu = m_cpu + per_event / n
user = idle["per_subscriber_kib"] * 1024
sock = idle.get("socket_slab_per_connection_kib")
kernel = (sock if sock is not None else idle["slab_per_connection_kib"]) * 1024
cpu = (ev.get("server") or {}).get("cpu_us_per_delivered_event")
def judge(got, want):
    return got is not None and abs(got - want) <= tol * want
ok = judge(user, m_user) and judge(kernel, m_kernel) and judge(cpu, m_cpu)
cpu_s = f"{cpu:.2f}" if cpu is not None else "-"
print(f"{int(idle['subscribers']):<7} {user:6.0f} ({m_user:.0f}) {user / m_user:5.2f}x  "
      f"{kernel:7.0f} ({m_kernel:.0f}) {kernel / m_kernel:5.2f}x  "
      f"{cpu_s:>7} ({m_cpu:.2f}) {(cpu or 0) / m_cpu:5.2f}x    {'holds' if ok else 'OFF'}")
EOF
)
    echo "$line"
    case "$line" in *OFF) failed=1 ;; esac
done
if [ "$failed" = 1 ]; then
    echo "capacity-check: the model is off by more than $tol at some point (raw: $out/)" >&2
    exit 1
fi
echo "capacity-check: the model holds within $tol (raw: $out/)"
