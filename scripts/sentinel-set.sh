# Sourced by scripts/soak-cluster.sh --sentinel and scripts/bench-failover.sh: one master,
# two replicas and three sentinels on loopback TCP ports (the flags of
# tests/support/sentinel.rs: `down-after-milliseconds 1000`, `failover-timeout 4000`,
# diskless sync without delay, no persistence). The caller sets `ss_dir` (a temporary
# directory) and `ss_log` (where logs go) and kills `ss_pids` in its EXIT trap.
# After ss_start: ss_url (the redis-sentinel:// URL), ss_redis_ports/ss_redis_pids
# (index 0 is the first master), ss_sentinel_ports.

ss_master_name=mymaster
ss_redis_ports=()
ss_redis_pids=()
ss_sentinel_ports=()
ss_pids=()
ss_url=""

ss_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ss_cli() { # PORT ARGS…
    local p=$1
    shift
    redis-cli -h 127.0.0.1 -p "$p" "$@" 2>/dev/null
}

# The value after KEY in a flat key/value listing on stdin.
ss_field() { awk -v k="$1" 'prev == k { print; exit } { prev = $0 }'; }

ss_wait() { # WHAT TRIES COMMAND…: runs COMMAND every 0.05 s until it succeeds
    local what=$1 tries=$2
    shift 2
    for _ in $(seq "$tries"); do
        "$@" && return 0
        sleep 0.05
    done
    echo "sentinel-set: $what" >&2
    return 1
}

ss_pong() { [ "$(ss_cli "$1" PING)" = PONG ]; }
ss_linked() { ss_cli "$1" INFO replication | grep -q 'master_link_status:up'; }
ss_sentinel_ready() {
    local m
    m=$(ss_cli "$1" SENTINEL master "$ss_master_name")
    [ "$(ss_field num-slaves <<<"$m")" = 2 ] && [ "$(ss_field num-other-sentinels <<<"$m")" = 2 ]
}

ss_start() {
    local i port args hosts=()
    for i in 0 1 2; do
        port=$(ss_free_port)
        mkdir -p "$ss_dir/redis-$i"
        args=(--port "$port" --bind 127.0.0.1 --dir "$ss_dir/redis-$i" --save ''
            --appendonly no --repl-diskless-sync-delay 0)
        [ "$i" = 0 ] || args+=(--replicaof 127.0.0.1 "${ss_redis_ports[0]}")
        redis-server "${args[@]}" >"$ss_log/redis-$i.log" 2>&1 &
        ss_redis_pids+=($!)
        ss_pids+=($!)
        ss_redis_ports+=("$port")
        ss_wait "redis-server $i did not start (log: $ss_log/redis-$i.log)" 100 ss_pong "$port"
    done
    for i in 1 2; do
        ss_wait "replica $i did not sync" 200 ss_linked "${ss_redis_ports[$i]}"
    done
    for i in 0 1 2; do
        port=$(ss_free_port)
        mkdir -p "$ss_dir/sentinel-$i"
        cat >"$ss_dir/sentinel-$i/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
dir $ss_dir/sentinel-$i
sentinel monitor $ss_master_name 127.0.0.1 ${ss_redis_ports[0]} 2
sentinel down-after-milliseconds $ss_master_name 1000
sentinel failover-timeout $ss_master_name 4000
sentinel parallel-syncs $ss_master_name 2
EOF
        redis-sentinel "$ss_dir/sentinel-$i/sentinel.conf" >"$ss_log/sentinel-$i.log" 2>&1 &
        ss_pids+=($!)
        ss_sentinel_ports+=("$port")
        hosts+=("127.0.0.1:$port")
    done
    for port in "${ss_sentinel_ports[@]}"; do
        ss_wait "sentinel $port did not see both replicas and the other sentinels" 400 \
            ss_sentinel_ready "$port"
    done
    ss_url="redis-sentinel://$(IFS=,; echo "${hosts[*]}")/$ss_master_name"
}

# The master's port as the first sentinel that answers names it.
ss_master_port() {
    local p a
    for p in "${ss_sentinel_ports[@]}"; do
        a=$(ss_cli "$p" SENTINEL get-master-addr-by-name "$ss_master_name" | sed -n 2p)
        [ -n "$a" ] && { echo "$a"; return 0; }
    done
    return 1
}

# The pid of the redis-server on PORT.
ss_pid_of() {
    local i
    for i in "${!ss_redis_ports[@]}"; do
        [ "${ss_redis_ports[$i]}" = "$1" ] && { echo "${ss_redis_pids[$i]}"; return 0; }
    done
    return 1
}

ss_promoted() { local m; m=$(ss_master_port) && [ "$m" != "$1" ]; }

# Waits (up to 15 s) until the sentinels name a master other than OLD_PORT.
ss_wait_promotion() { ss_wait "no promotion away from $1 within 15 s" 300 ss_promoted "$1"; }
