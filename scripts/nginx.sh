#!/usr/bin/env bash
# A private nginx (Debian's) on 127.0.0.1 in front of a local app, running the site file
# deploy/nginx/sessionstream.conf with only its addresses rewritten. No root needed:
# everything (config, pid file, logs, temp dirs) lives under one prefix directory.
#
# Usage: scripts/nginx.sh start|stop|status|config
#
# Environment:
#   SESSIONSTREAM_NGINX_PORT          listen port on 127.0.0.1 (default 18080)
#   SESSIONSTREAM_NGINX_UPSTREAM      host:port of the app (default 127.0.0.1:8000)
#   SESSIONSTREAM_NGINX_DIR           prefix directory (default <repo>/build/nginx)
#   SESSIONSTREAM_NGINX_READ_TIMEOUT  overrides proxy_read_timeout of the stream routes (5s)
#   SESSIONSTREAM_NGINX_BIN           the nginx binary (default /usr/sbin/nginx)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"

port="${SESSIONSTREAM_NGINX_PORT:-18080}"
upstream="${SESSIONSTREAM_NGINX_UPSTREAM:-127.0.0.1:8000}"
prefix="${SESSIONSTREAM_NGINX_DIR:-$repo_root/build/nginx}"
read_timeout="${SESSIONSTREAM_NGINX_READ_TIMEOUT:-}"
# Not $NGINX: nginx itself reads that variable as a list of inherited sockets.
nginx="${SESSIONSTREAM_NGINX_BIN:-/usr/sbin/nginx}"
site="$repo_root/deploy/nginx/sessionstream.conf"

conf="$prefix/nginx.conf"
pid_file="$prefix/nginx.pid"
error_log="$prefix/error.log"

die() {
    echo "nginx.sh: $*" >&2
    exit 1
}

[[ "$port" =~ ^[0-9]+$ ]] || die "SESSIONSTREAM_NGINX_PORT=$port: expected a port number"
[[ "$upstream" =~ ^[A-Za-z0-9.:_-]+:[0-9]+$ ]] ||
    die "SESSIONSTREAM_NGINX_UPSTREAM=$upstream: expected host:port"
[[ -z "$read_timeout" || "$read_timeout" =~ ^[0-9]+(ms|s|m)?$ ]] ||
    die "SESSIONSTREAM_NGINX_READ_TIMEOUT=$read_timeout: expected an nginx time such as 5s"

running() {
    [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

write_config() {
    [[ -x "$nginx" ]] || die "$nginx not found; install Debian's nginx (scripts/bootstrap.sh full)"
    mkdir -p "$prefix/tmp"
    # The site file as shipped, with the addresses of this machine.
    local rewrite=(-e "s|server 127.0.0.1:8000;|server $upstream;|" -e "s|listen 80;|listen 127.0.0.1:$port;|")
    if [[ -n "$read_timeout" ]]; then
        rewrite+=(-e "s|proxy_read_timeout 120s;|proxy_read_timeout $read_timeout;|")
    fi
    sed "${rewrite[@]}" "$site" > "$prefix/site.conf"
    grep -q "server $upstream;" "$prefix/site.conf" || die "$site: upstream line not found"
    grep -q "listen 127.0.0.1:$port;" "$prefix/site.conf" || die "$site: listen line not found"
    cat > "$conf" <<CONF
worker_processes 1;
pid $pid_file;
error_log $error_log info;
events { worker_connections 4096; }
http {
    access_log $prefix/access.log;
    # Compression on, as in Debian's nginx.conf, and for event streams too, as a careless
    # gzip_types would: the site must keep its stream routes uncompressed by itself.
    gzip on;
    gzip_types text/event-stream application/json;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    include $prefix/site.conf;
}
CONF
    "$nginx" -t -q -p "$prefix" -c "$conf" -g "user $(id -un);" 2>&1 || die "configuration test failed"
}

case "${1:-}" in
    config)
        write_config
        echo "$conf"
        ;;
    start)
        running && die "already running (pid $(cat "$pid_file")); stop it first"
        write_config
        # -g user: as root nginx would drop its worker to nobody, who cannot read the prefix.
        # Its own stdio detached: the daemon would otherwise hold the caller's pipes open.
        "$nginx" -p "$prefix" -c "$conf" -g "user $(id -un);" </dev/null >/dev/null 2>"$prefix/start.log" ||
            die "did not start: $(cat "$prefix/start.log")"
        for _ in $(seq 50); do
            running && { echo "nginx on 127.0.0.1:$port -> $upstream (pid $(cat "$pid_file"))"; exit 0; }
            sleep 0.1
        done
        die "did not start; see $error_log"
        ;;
    stop)
        if running; then
            pid="$(cat "$pid_file")"
            # Fast shutdown: a graceful one (QUIT) would wait for every open stream.
            kill -TERM "$pid"
            for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || exit 0
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        ;;
    status)
        running && echo "running (pid $(cat "$pid_file"))" || { echo "stopped"; exit 1; }
        ;;
    *)
        echo "usage: $0 start|stop|status|config" >&2
        exit 2
        ;;
esac
