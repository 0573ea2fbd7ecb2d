"""Kafka node mode against session mode (seed 000's design), N sessions on one topic.

Every session is subscribed to its own key of one topic. For each mode a separate
"server" process (pinned to core 0) builds a Hub, a ConnectionManager, one Notifier
and N connections, then:

* node mode: one ``KafkaSource`` for the topic, channel template ``{topic}:{key}``;
  connection i is subscribed to ``<topic>:k<i>``.
* session mode: a ``KafkaSessionPool`` with one consumer (its own consumer group) per
  session. The pool has no key filter: each group reads the whole topic and publishes
  every record to the session's channel ``session:<id>`` (event type ``{key}``), so
  every connection receives all N keys and the client side keeps only its own key,
  as seed 000 did. Deliveries counted are own-key records only; the rest are reported
  as ``foreign_frames`` (work done for records the session then throws away).

The producer (``KafkaSink``) runs in this process, pinned to core 1, publishing to the
N keys round-robin at ``--rate`` events/s in total, each payload holding its produce
time in µs. The server drains its connections through the notifier and ``take()``,
and reports over the measured window only (first produce to last delivery plus a
settle): CPU seconds, threads, RSS, ESTABLISHED sockets to the broker, deliveries and
producer→client latency p50/p99. Setup (create N consumers and wait until each has
its partitions) and teardown are timed separately.

    PYTHONPATH=python .venv/bin/python bench/kafka/node_vs_session.py
    ... --sessions 100,250,500,1000 --rate 200 --duration 20

Results: ``bench/results/kafka-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "scripts" / "kafka.sh"
SERVER_CORE = 0
PRODUCER_CORE = 1

# Payload: {"t":<produce time, µs>,"k":"k<index>","p":"<padding>"}; the fixed field order
# lets the server read t and k with one regex over a whole take() buffer.
FRAME_RE = re.compile(rb'data: \{"t":(\d+),"k":"k(\d+)"')


# -- process measurements (Linux /proc) -----------------------------------------------


def _status_field(pid: int | str, name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def threads(pid: int | str = "self") -> int:
    return _status_field(pid, "Threads")


def rss_kib(pid: int | str = "self") -> int:
    return _status_field(pid, "VmRSS")


def hwm_kib(pid: int | str = "self") -> int:
    return _status_field(pid, "VmHWM")


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def broker_connections(port: int, pid: int | str = "self") -> int:
    """ESTABLISHED TCP sockets of process ``pid`` whose remote port is ``port``."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    remote, state, inode = parts[2], parts[3], parts[9]
                    if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                        if inode in inodes:
                            count += 1
        except FileNotFoundError:
            continue
    return count


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(sorted_values: list[int], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[k])


# -- server (one mode, one process) ---------------------------------------------------


def send(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def serve(args: argparse.Namespace) -> None:
    from sessionstream import _core as ss

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = args.n
    port = int(args.bootstrap.rsplit(":", 1)[1])
    props = {"bootstrap.servers": args.bootstrap}
    hub = ss.Hub(history_max_events=args.history)
    manager = ss.ConnectionManager(
        hub, max_connections=n + 16, max_per_ip=n + 16, max_per_session=4
    )
    notifier = ss.Notifier()
    base = {
        "cpu_s": self_cpu(),
        "threads": threads(),
        "rss_kib": rss_kib(),
        "broker_connections": broker_connections(port),
    }

    sessions = [f"bench-session-{i:06d}" for i in range(n)]
    conns: dict[int, tuple[Any, int]] = {}
    source = pool = None
    t0 = time.monotonic()
    cpu0 = self_cpu()
    if args.serve == "node":
        for i, sid in enumerate(sessions):
            c = manager.open(
                sid, notifier=notifier, channels=[f"{args.topic}:k{i}"], ip="127.0.0.1"
            )
            conns[c.id] = (c, i)
        source = ss.KafkaSource(
            hub,
            properties=props,
            topics=[args.topic],
            channel="{topic}:{key}",
            node_id=f"bench-{os.getpid()}",
        )
        source.start()
        t_created = time.monotonic()
        ready = source.wait_ready(args.setup_timeout)
        assigned = 1 if ready else 0
    else:
        pool = ss.KafkaSessionPool(
            hub,
            properties=props,
            domains=[("bench", args.topic)],
            channel="session:{session}",
            event_type="{key}",
            group_prefix="bench",
            max_consumers=n,
            idle_timeout=86400.0,
            sweep_interval=86400.0,
        )
        pool.start()
        for i, sid in enumerate(sessions):
            c = manager.open(sid, notifier=notifier, channels=[f"session:{sid}"], ip="127.0.0.1")
            conns[c.id] = (c, i)
        create_errors = []
        for sid in sessions:
            try:
                pool.open(sid, "bench")
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                create_errors.append(f"{type(exc).__name__}: {exc}")
                if len(create_errors) > 5:
                    break
        t_created = time.monotonic()
        deadline = t0 + args.setup_timeout
        assigned = 0
        for sid in sessions:
            left = max(0.001, deadline - time.monotonic())
            if pool.wait_assigned(sid, "bench", left):
                assigned += 1
        ready = assigned == n and not create_errors
    t_ready = time.monotonic()
    setup = {
        "create_s": round(t_created - t0, 3),
        "ready_s": round(t_ready - t0, 3),
        "cpu_s": round(self_cpu() - cpu0, 3),
        "assigned": assigned,
        "ready": ready,
    }
    if args.serve == "session":
        setup["errors"] = create_errors[:5]
    time.sleep(args.settle)  # let joins, first fetches and metadata calm down
    idle_cpu0, idle_t0 = self_cpu(), time.monotonic()
    time.sleep(2.0)
    idle = {"cpu_s_per_s": round((self_cpu() - idle_cpu0) / (time.monotonic() - idle_t0), 4)}
    send(
        {
            "ready": ready,
            "setup": setup,
            "baseline": base,
            "idle": idle,
            "threads": threads(),
            "rss_kib": rss_kib(),
            "broker_connections": broker_connections(port),
            "fds": open_fds(),
        }
    )

    # Wait for GO, then measure until STOP.
    line = sys.stdin.readline().strip()
    if line != "GO":
        return
    sel = selectors.DefaultSelector()
    sel.register(notifier.fileno(), selectors.EVENT_READ, "notifier")
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    latencies: list[int] = []
    delivered = foreign = frames_bytes = closed = 0
    peak_threads, peak_rss, peak_conns = threads(), rss_kib(), broker_connections(port)
    next_sample = time.monotonic() + 1.0
    cpu_start = self_cpu()
    wall_start = time.monotonic()
    stop = False
    closed_ids: set[int] = set()
    while not stop:
        for key, _ in sel.select(timeout=0.25):
            if key.data == "stdin":
                os.read(sys.stdin.fileno(), 64)
                stop = True
                continue
            ready_ids = notifier.take_ready()
            now_us = time.time_ns() // 1000
            for cid in ready_ids:
                entry = conns.get(cid)
                if entry is None:
                    continue
                conn, index = entry
                while True:
                    data, is_closed, _reason = conn.take()
                    if data:
                        frames_bytes += len(data)
                        for t, k in FRAME_RE.findall(data):
                            if int(k) == index:
                                delivered += 1
                                latencies.append(now_us - int(t))
                            else:
                                foreign += 1
                    if is_closed and cid not in closed_ids:
                        closed_ids.add(cid)
                        closed += 1
                    if len(data) < 262144:
                        break
        if time.monotonic() >= next_sample:
            next_sample += 1.0
            peak_threads = max(peak_threads, threads())
            peak_rss = max(peak_rss, rss_kib())
            peak_conns = max(peak_conns, broker_connections(port))
    cpu_s = self_cpu() - cpu_start
    wall_s = time.monotonic() - wall_start
    latencies.sort()
    health = source.health() if source is not None else pool.health()
    health.pop("consumers", None)
    metrics = hub.metrics()
    send(
        {
            "result": True,
            "window_s": round(wall_s, 3),
            "cpu_s": round(cpu_s, 3),
            "cpu_s_per_s": round(cpu_s / wall_s, 4),
            "threads": threads(),
            "threads_peak": peak_threads,
            "rss_kib": rss_kib(),
            "rss_kib_peak": max(peak_rss, rss_kib()),
            "rss_kib_above_baseline": rss_kib() - base["rss_kib"],
            "vm_hwm_kib": hwm_kib(),
            "broker_connections": broker_connections(port),
            "broker_connections_peak": peak_conns,
            "fds": open_fds(),
            "delivered": delivered,
            "foreign_frames": foreign,
            "frame_bytes": frames_bytes,
            "closed_connections": closed,
            "latency_us": {
                "p50": percentile(latencies, 0.50),
                "p99": percentile(latencies, 0.99),
                "max": float(latencies[-1]) if latencies else None,
            },
            "hub": {k: metrics[k] for k in ("published", "delivered", "dropped") if k in metrics},
            "kafka": {
                k: health.get(k)
                for k in ("status", "received", "published", "duplicates", "skipped")
            },
        }
    )
    t = time.monotonic()
    if source is not None:
        source.stop()
    if pool is not None:
        pool.stop()
        pool.wait_closed(args.teardown_timeout)
    send({"teardown_s": round(time.monotonic() - t, 3)})
    hub.close()


# -- parent: broker, topic, producer and the two servers -----------------------------


def kafka_sh(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def broker_pid() -> int | None:
    pid_file = ROOT / ".kafka" / "kafka.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def new_topic(admin: Any, partitions: int) -> str:
    name = f"bench-nvs-{os.urandom(4).hex()}"
    admin.create_topic(name, partitions)
    deadline = time.monotonic() + 30
    while admin.partitions(name, 5.0) != partitions:
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {name} has no metadata after 30 s")
        time.sleep(0.05)
    return name


class Server:
    def __init__(self, mode: str, n: int, topic: str, args: argparse.Namespace) -> None:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            mode,
            "--n",
            str(n),
            "--topic",
            topic,
            "--bootstrap",
            args.bootstrap,
            "--history",
            str(args.history),
            "--setup-timeout",
            str(args.setup_timeout),
            "--teardown-timeout",
            str(args.teardown_timeout),
            "--settle",
            str(args.settle),
        ]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", str(SERVER_CORE), *cmd]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "python"), env.get("PYTHONPATH", "")) if p
        )
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def read(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=min(1.0, deadline - time.monotonic())):
                line = self.proc.stdout.readline()
                if not line:
                    return None
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
            if self.proc.poll() is not None:
                return None
        return None

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def produce(sink: Any, topic: str, n: int, rate: float, duration: float, pad: int) -> int:
    total = int(rate * duration)
    padding = "x" * pad
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0.0005:
            time.sleep(delay)
        k = i % n
        sink.produce(
            topic, f'{{"t":{time.time_ns() // 1000},"k":"k{k}","p":"{padding}"}}', key=f"k{k}"
        )
    sink.flush(30)
    return total


def run_one(mode: str, n: int, args: argparse.Namespace, admin: Any, sink: Any) -> dict[str, Any]:
    topic = new_topic(admin, args.partitions)
    print(f"[{mode} N={n}] topic {topic}: starting server", file=sys.stderr, flush=True)
    server = Server(mode, n, topic, args)
    out: dict[str, Any] = {"mode": mode, "sessions": n, "topic": topic}
    try:
        ready = server.read(args.setup_timeout + args.settle + 60)
        if ready is None:
            out["error"] = "server exited or timed out during setup"
            return out
        out["setup"] = ready
        print(f"[{mode} N={n}] setup {ready['setup']}", file=sys.stderr, flush=True)
        if not ready["ready"]:
            out["error"] = f"only {ready['setup']['assigned']} of {n} consumers assigned"
        # Warm-up records (key "w", not counted): the producer's first record to a new
        # topic waits for its metadata, which is not what this measures.
        for _ in range(20):
            sink.produce(topic, '{"t":0,"k":"w"}', key="w")
        sink.flush(30)
        time.sleep(1.0)
        bpid = broker_pid()
        broker_cpu0 = proc_cpu_seconds(bpid) if bpid else 0.0
        server.write("GO")
        t0 = time.monotonic()
        produced = produce(sink, topic, n, args.rate, args.duration, args.pad)
        time.sleep(args.drain)
        server.write("STOP")
        broker_cpu = (proc_cpu_seconds(bpid) - broker_cpu0) if bpid else None
        window = time.monotonic() - t0
        result = server.read(120)
        if result is None:
            out["error"] = "server gave no result"
            return out
        out["produced"] = produced
        out["run"] = result
        out["broker_cpu_s"] = round(broker_cpu, 3) if broker_cpu is not None else None
        out["broker_window_s"] = round(window, 3)
        lat = result["latency_us"]
        print(
            f"[{mode} N={n}] delivered {result['delivered']}/{produced} cpu {result['cpu_s']} s"
            f" p50 {lat['p50']} µs p99 {lat['p99']} µs threads {result['threads']}"
            f" rss {result['rss_kib']} KiB conns {result['broker_connections']}",
            file=sys.stderr,
            flush=True,
        )
        teardown = server.read(args.teardown_timeout + 30)
        if teardown:
            out["teardown_s"] = teardown.get("teardown_s")
    finally:
        server.finish(args.teardown_timeout + 30)
    return out


def fmt_ms(us: float | None) -> str:
    return "–" if us is None else f"{us / 1000:.1f}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "–"
    return f"{b / a:.1f}×"


def markdown(doc: dict[str, Any]) -> str:
    cfg = doc["config"]
    lines = [
        f"# Kafka: node mode vs session mode ({doc['date']})",
        "",
        f"One topic ({cfg['partitions']} partitions), N sessions each subscribed to its own key;"
        f" {cfg['rate']} events/s in total for {cfg['duration']} s, keys round-robin,"
        f" {cfg['pad']}-byte padding. Server pinned to core {SERVER_CORE}, producer to core"
        f" {PRODUCER_CORE}; broker unpinned. librdkafka {doc['librdkafka']}, Kafka"
        f" {doc.get('kafka_version', '3.9.2')}. Session mode: one consumer group per session,"
        " each reading the whole topic; the client keeps its own key (seed 000).",
        "",
        "| N | mode | setup s (create / assigned) | CPU s (window) | CPU s/s idle | threads |"
        " RSS MiB (above baseline) | broker conns | delivered / produced | foreign frames |"
        " closed |"
        " p50 ms | p99 ms | broker CPU s | teardown s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        " --- |",
    ]
    for r in doc["runs"]:
        if "run" not in r:
            lines.append(
                f"| {r['sessions']} | {r['mode']} | "
                + (
                    f"{r['setup']['setup']['create_s']} / {r['setup']['setup']['ready_s']}"
                    if "setup" in r
                    else "–"
                )
                + f" | failed: {r.get('error', '?')} | | | | | | | | | | | |"
            )
            continue
        s, x = r["setup"], r["run"]
        lines.append(
            f"| {r['sessions']} | {r['mode']} | {s['setup']['create_s']} / {s['setup']['ready_s']}"
            f" | {x['cpu_s']} | {s['idle']['cpu_s_per_s']} | {x['threads']} |"
            f" {x['rss_kib'] / 1024:.1f} ({x['rss_kib_above_baseline'] / 1024:.1f}) |"
            f" {x['broker_connections']} |"
            f" {x['delivered']} / {r['produced']} | {x['foreign_frames']} |"
            f" {x['closed_connections']} | {fmt_ms(x['latency_us']['p50'])} |"
            f" {fmt_ms(x['latency_us']['p99'])} | {r.get('broker_cpu_s', '–')} |"
            f" {r.get('teardown_s', '–')} |"
        )
    lines += ["", "## Ratios (session / node, same N)", ""]
    lines += [
        "| N | CPU | RSS | RSS above baseline | threads | broker conns | node p99 ≤ 100 ms |"
        " goal ≥ 20× (CPU, RSS above baseline) |"
    ]
    lines += ["| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, c in doc["comparisons"].items():
        lines.append(
            f"| {n} | {c['cpu_ratio']} | {c['rss_ratio']} | {c['rss_above_baseline_ratio']} |"
            f" {c['threads_ratio']} |"
            f" {c['connections_ratio']} | {c['node_p99_ok']} | {c['goal_20x']} |"
        )
    lines.append("")
    return "\n".join(lines)


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by = {(r["mode"], r["sessions"]): r for r in runs if "run" in r}
    for n in sorted({r["sessions"] for r in runs}):
        node, sess = by.get(("node", n)), by.get(("session", n))
        if not node:
            continue
        p99 = node["run"]["latency_us"]["p99"]
        c: dict[str, Any] = {
            "node_p99_ok": p99 is not None and p99 <= 100_000,
            "cpu_ratio": "–",
            "rss_ratio": "–",
            "rss_above_baseline_ratio": "–",
            "threads_ratio": "–",
            "connections_ratio": "–",
            "goal_20x": "session mode did not run",
        }
        if sess:
            a, b = node["run"], sess["run"]
            cpu = b["cpu_s"] / a["cpu_s"] if a["cpu_s"] else None
            ra, rb = a["rss_kib_above_baseline"], b["rss_kib_above_baseline"]
            rss = rb / ra if ra > 0 else None
            c.update(
                cpu_ratio=ratio(a["cpu_s"], b["cpu_s"]),
                rss_ratio=ratio(a["rss_kib"], b["rss_kib"]),
                rss_above_baseline_ratio=ratio(ra, rb),
                threads_ratio=ratio(a["threads"], b["threads"]),
                connections_ratio=ratio(a["broker_connections"], b["broker_connections"]),
                goal_20x=(
                    f"CPU {'met' if cpu and cpu >= 20 else 'missed'},"
                    f" RSS {'met' if rss and rss >= 20 else 'missed'}"
                ),
            )
            if sess.get("error") or b["delivered"] == 0:
                c["goal_20x"] = f"not comparable: session run failed ({sess.get('error', '')})"
            elif b["delivered"] < a["delivered"]:
                c["goal_20x"] += (
                    f"; session saturated ({b['delivered']}/{sess['produced']} delivered):"
                    " its ratios are lower bounds"
                )
        out[str(n)] = c
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--sessions", default="1000", help="N, or a comma list for a scaling run (100,250,500)"
    )
    p.add_argument("--rate", type=float, default=200.0, help="events/s in total (all keys)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of producing")
    p.add_argument("--modes", default="node,session")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--pad", type=int, default=64, help="payload padding bytes")
    p.add_argument("--history", type=int, default=16, help="hub history ring per channel")
    p.add_argument("--bootstrap", default="127.0.0.1:19092")
    p.add_argument("--setup-timeout", type=float, default=300.0)
    p.add_argument("--teardown-timeout", type=float, default=120.0)
    p.add_argument("--settle", type=float, default=3.0, help="seconds between setup and idle")
    p.add_argument("--drain", type=float, default=2.0, help="seconds after the last produce")
    p.add_argument("--suffix", default="", help="appended to the result file names")
    p.add_argument("--pause", type=float, default=10.0, help="seconds between runs")
    p.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    # internal: the server side
    p.add_argument("--serve", choices=("node", "session"), help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args)
        return 0

    from sessionstream import _core as ss

    sizes = [int(x) for x in args.sessions.split(",") if x.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    started = False
    if kafka_sh("status").returncode != 0:
        print("starting Kafka (scripts/kafka.sh start)", file=sys.stderr, flush=True)
        res = kafka_sh("start")
        if res.returncode != 0:
            print(res.stdout, res.stderr, file=sys.stderr)
            return 1
        started = True
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > PRODUCER_CORE:
        os.sched_setaffinity(0, {PRODUCER_CORE})
    props = {"bootstrap.servers": args.bootstrap}
    admin = ss.KafkaAdmin(props)
    sink = ss.KafkaSink(properties=props)
    sink.start()
    runs: list[dict[str, Any]] = []
    try:
        for n in sizes:
            for mode in modes:
                runs.append(run_one(mode, n, args, admin, sink))
                time.sleep(args.pause)  # let the broker finish the last run's group exits
    finally:
        sink.stop()
        if started:
            kafka_sh("stop")
    now = dt.datetime.now(dt.timezone.utc)
    doc = {
        "date": now.strftime("%Y-%m-%d"),
        "time": now.isoformat(timespec="seconds"),
        "librdkafka": ss.librdkafka_version(),
        "machine": {"cpus": os.cpu_count(), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)},
        "config": {
            k: getattr(args, k)
            for k in ("sessions", "rate", "duration", "partitions", "pad", "history", "bootstrap")
        },
        "runs": runs,
        "comparisons": compare(runs),
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"kafka-{doc['date']}{args.suffix}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(doc))
    print(markdown(doc))
    print(f"wrote {stem}.json and {stem}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
