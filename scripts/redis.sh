#!/usr/bin/env bash
# A private redis-server (Debian's) on 127.0.0.1 for development and CI, with
# its own data dir and an append-only file, so a restart keeps streams and
# sessions.
#
# Usage: scripts/redis.sh start|stop|restart|status|address|url
#        scripts/redis.sh with COMMAND...   (COMMAND sees SESSIONSTREAM_TEST_REDIS)
#
# Environment:
#   SESSIONSTREAM_REDIS_PORT           port on 127.0.0.1 (default 16379)
#   SESSIONSTREAM_REDIS_DIR            data, pid and log dir (default <repo>/.redis/data)
#   SESSIONSTREAM_REDIS_START_TIMEOUT  seconds to wait for PING (default 20)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"

host="127.0.0.1"
port="${SESSIONSTREAM_REDIS_PORT:-16379}"
start_timeout="${SESSIONSTREAM_REDIS_START_TIMEOUT:-20}"
server="${REDIS_SERVER:-/usr/bin/redis-server}"

data="${SESSIONSTREAM_REDIS_DIR:-$repo_root/.redis/data}"
pid_file="$data/redis.pid"
log_file="$data/redis.log"

die() {
    echo "redis.sh: $*" >&2
    exit 1
}

address() {
    echo "$host:$port"
}

url() {
    echo "redis://$host:$port/0"
}

[[ "$port" =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) ||
    die "SESSIONSTREAM_REDIS_PORT must be 1-65535, got '$port'"

prepare_dir() {
    mkdir -p "$data"
    data="$(cd "$data" && pwd)"
    pid_file="$data/redis.pid"
    log_file="$data/redis.log"
}

# PING through redis-cli when present, else a raw RESP round trip over bash's
# /dev/tcp, so status works without redis-tools.
ping() {
    if command -v redis-cli >/dev/null; then
        [[ "$(timeout 2 redis-cli -h "$host" -p "$port" ping 2>/dev/null)" == "PONG" ]]
        return
    fi
    local reply
    reply="$(timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port && printf 'PING\r\n' >&3 && head -c 7 <&3" 2>/dev/null)" ||
        return 1
    [[ "$reply" == "+PONG"* ]]
}

# Pid of our running server, or nothing. The command line is checked so that
# a stale pid file whose pid was reused does not count.
running_pid() {
    local pid
    [[ -f "$pid_file" ]] || return 0
    pid="$(<"$pid_file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    if [[ -r "/proc/$pid/cmdline" ]] &&
        ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'redis-server'; then
        return 0
    fi
    echo "$pid"
}

# Serialises start/stop on one data dir (parallel test runs).
lock_data() {
    exec 9>"$data/.lock"
    flock -w 60 9 || die "timed out waiting for $data/.lock"
}

wait_exit() {
    local pid="$1" i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "redis.sh: pid $pid still alive after 10s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

cmd_start() {
    [[ -x "$server" ]] || die "$server not found (apt-get install -y redis-server)"
    prepare_dir
    lock_data
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]] && ping; then
        echo "redis already running (pid $pid) on $(address)"
        return 0
    fi
    if [[ -z "$pid" ]] && ping; then
        die "$(address) already answers PING but is not ours (no live pid in $pid_file)"
    fi
    rm -f "$pid_file"
    if [[ -f "$log_file" ]]; then mv -f "$log_file" "$log_file.1"; fi
    # Settings go on the command line: no config file to keep in step, and
    # protected mode stays on as the server binds to loopback only. The lock
    # fd is closed so the daemon does not hold it.
    "$server" --bind "$host" --port "$port" --dir "$data" \
        --daemonize yes --pidfile "$pid_file" --logfile "$log_file" \
        --appendonly yes --appendfilename appendonly.aof --save "" \
        --protected-mode yes 9>&- </dev/null >/dev/null 2>&1 ||
        {
            tail -n 40 "$log_file" >&2 2>/dev/null || true
            die "redis-server refused to start"
        }

    local deadline=$((SECONDS + start_timeout))
    while ((SECONDS < deadline)); do
        if ping; then
            echo "redis running (pid $(running_pid)) on $(address)"
            return 0
        fi
        sleep 0.1
    done
    echo "redis.sh: no PING answer on $(address) after ${start_timeout}s; last lines of $log_file:" >&2
    tail -n 40 "$log_file" >&2 || true
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_exit "$pid" || true
    fi
    exit 1
}

cmd_stop() {
    prepare_dir
    lock_data
    local pid
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$pid_file"
        echo "redis not running"
        return 0
    fi
    # SHUTDOWN fsyncs the append-only file first; SIGTERM does the same.
    if command -v redis-cli >/dev/null; then
        timeout 5 redis-cli -h "$host" -p "$port" shutdown >/dev/null 2>&1 || true
    fi
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" || die "pid $pid did not exit"
    rm -f "$pid_file"
    echo "redis stopped (pid $pid)"
}

cmd_status() {
    if ping; then
        echo "redis answers PING on $(address) data=$data"
        return 0
    fi
    echo "redis not answering on $(address)"
    return 1
}

# Runs a command with SESSIONSTREAM_TEST_REDIS set, starting the server first
# when it is not running and stopping it again afterwards only in that case.
cmd_with() {
    local started=0 rc=0
    if ! ping; then
        cmd_start
        started=1
        exec 9>&- # the command may run redis.sh itself
    fi
    SESSIONSTREAM_TEST_REDIS="$(address)" "$@" || rc=$?
    if ((started)); then
        cmd_stop
    fi
    return "$rc"
}

case "${1:-}" in
start) cmd_start ;;
with)
    shift
    (($#)) || die "usage: $0 with COMMAND [ARGS...]"
    cmd_with "$@"
    ;;
stop) cmd_stop ;;
restart)
    cmd_stop
    cmd_start
    ;;
status) cmd_status ;;
address) address ;;
url) url ;;
*)
    echo "usage: $0 start|stop|restart|status|address|url|with COMMAND..." >&2
    exit 2
    ;;
esac
