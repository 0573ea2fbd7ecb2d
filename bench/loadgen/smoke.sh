#!/usr/bin/env bash
# One side-by-side data point: start a baseline server pinned to core 0, run
# loadgen pinned to core 1, trigger publishing once every client is connected,
# and print loadgen's JSON extended with the server's CPU time and RSS.
#
#   bench/loadgen/smoke.sh queue|sse-starlette|cpp [extra loadgen args...]
#
# Environment: PORT (18000) CONNECTIONS (1000) RATE (200) PUBLISH_S (10)
# SIZE (100) TRANSPORT (sse|ws) TAIL_S (3: measured time after publishing ends)
# SERVER_CPU (0) CLIENT_CPU (1) CPP_ARGS (extra cpp_reference options).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
server="${1:?usage: smoke.sh queue|sse-starlette|cpp [loadgen args...]}"
shift
port="${PORT:-18000}"
connections="${CONNECTIONS:-1000}"
rate="${RATE:-200}"
publish_s="${PUBLISH_S:-10}"
size="${SIZE:-100}"
transport="${TRANSPORT:-sse}"
tail_s="${TAIL_S:-3}"
base="http://127.0.0.1:${port}"
loadgen="${LOADGEN:-$root/build/loadgen/loadgen}"
cpp_reference="${CPP_REFERENCE:-$root/build/loadgen/cpp_reference/cpp_reference}"
uvicorn=(taskset -c "${SERVER_CPU:-0}" "$root/.venv/bin/uvicorn" --app-dir "$root/bench/baselines"
  --host 127.0.0.1 --port "$port" --loop uvloop --http httptools
  --no-access-log --log-level warning --backlog 4096)

case "$server" in
  queue) "${uvicorn[@]}" queue_server:app & ;;
  sse-starlette) "${uvicorn[@]}" sse_starlette_server:app & ;;
  # shellcheck disable=SC2086  # CPP_ARGS is a list of options
  cpp) taskset -c "${SERVER_CPU:-0}" "$cpp_reference" --port "$port" ${CPP_ARGS:-} & ;;
  *) echo "unknown server '$server' (queue, sse-starlette or cpp)" >&2; exit 2 ;;
esac
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  curl -fs "$base/bench/stats" >/dev/null && break
  sleep 0.1
done
curl -fs "$base/bench/stats" >/dev/null || { echo "server did not come up on $port" >&2; exit 1; }

# utime+stime of a process in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

if [ "$transport" = ws ]; then
  url="ws://127.0.0.1:${port}/stream/ws"
  extra=(--ws-subscribe bench)
else
  url="$base/stream/sse?channel=bench"
  extra=()
fi

# Other work on the machine skews every figure: record the load beside them.
load_before=$(cut -d' ' -f1 /proc/loadavg)
rss_before=$(rss_kb "$server_pid")
out="$(mktemp)"
taskset -c "${CLIENT_CPU:-1}" "$loadgen" --url "$url" "${extra[@]}" \
  --connections "$connections" --duration "$(echo "$publish_s + $tail_s" | bc)" "$@" >"$out" &
loadgen_pid=$!

# Publishing starts once the server reports every stream open (stalled ones included).
for _ in $(seq 600); do
  open=$(curl -fs "$base/bench/stats" | jq .connections)
  [ "$open" -ge "$connections" ] && break
  kill -0 "$loadgen_pid" 2>/dev/null || break
  sleep 0.1
done
rss_connected=$(rss_kb "$server_pid")
cpu0=$(cpu_ticks "$server_pid")
curl -fs -X POST "$base/bench/publish?rate=${rate}&duration=${publish_s}&size=${size}" >/dev/null
sleep "$publish_s"
sleep "$tail_s"
cpu1=$(cpu_ticks "$server_pid")
wait "$loadgen_pid"
stats=$(curl -fs "$base/bench/stats")
load_after=$(cut -d' ' -f1 /proc/loadavg)

jq --arg server "$server" --argjson stats "$stats" \
  --argjson cpu "$(echo "scale=3; ($cpu1 - $cpu0) / $hz" | bc)" \
  --argjson rss0 "$rss_before" --argjson rss1 "$rss_connected" \
  --argjson load "[$load_before, $load_after]" \
  --argjson rate "$rate" --argjson publish_s "$publish_s" --argjson size "$size" \
  '. + {server: $server, rate: $rate, publish_s: $publish_s, size: $size,
        server_cpu_s: $cpu,
        server_cpu_us_per_delivery: (if .deliveries > 0 then ($cpu * 1e6 / .deliveries) else null end),
        server_rss_kb_idle_per_conn: (if .connections_ok > 0 then (($rss1 - $rss0) / .connections_ok) else null end),
        server_stats: $stats, loadavg_1m_before_after: $load}' "$out"
rm -f "$out"
