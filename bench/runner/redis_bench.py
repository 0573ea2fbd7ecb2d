"""The ``redis`` scenario: sessionstream behind Redis against the seed-001 pattern.

Part ``pubsub``: N SSE clients, each its own session, spread over C crawl channels
``crawl:<i>:progress``; a publisher process PUBLISHes progress messages to Redis at a
ladder of rates. (s) sessionstream with native delivery reads every channel over one
PSUBSCRIBE connection (``redis_subscribe=crawl:*:progress``, ``redis_streams=false``);
(a) ``bench/baselines/redis_per_connection.py`` opens one SUBSCRIBE connection per
browser, as seed 001 did.

Part ``nodes``: N SSE clients per node on one channel; (1n) one sessionstream node with
``redis_streams`` on, (2n) two nodes (two uvicorn processes, both on the server core)
sharing the Redis stream; events are published through node 0's ``/bench/publish``
(``hub.publish`` -> Redis -> every node's reader).

Pinning: servers on the server core; loadgen, the publisher and redis-server on the
client core. Redis CPU is the redis-server process's utime+stime over each step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from runner import report
from runner.loadgen import Loadgen, LoadgenError
from runner.scenarios import Context, Record, base_record, check_delivery, guarded
from runner.servers import SERVERS, Server, ServerError, ServerSpec, nice_prefix
from runner.settings import CLIENT_CORE, SERVER_CORE
from runner.settings import FULL as BASE_FULL
from runner.settings import QUICK as BASE_QUICK
from runner.system import (
    CoreTimes,
    core_delta,
    core_times,
    cpu_check,
    cpu_seconds,
    loadavg,
    set_autogroup_nice,
    threads,
)

Row = dict[str, Any]
RUNNER_CLIENT = "bench-runner"
PUBLISHER_CLIENT = "bench-publisher"


@dataclass(frozen=True)
class RedisSettings:
    port: int = 16400  # private: the test suite's Redis (16379) is not disturbed
    data_dir: str = "build/bench-redis"
    repeats: int = 2
    step_seconds: float = 2.0
    step_tail: float = 0.5
    p99_limit_ms: float = 50.0
    min_delivered: float = 0.95
    ramp: float = 1000.0
    # Failing steps in a row that end a ladder; a hard one (short, p99 over 3x the bound,
    # a full core) ends it at once. p99-only misses near the bound keep it climbing.
    max_fails: int = 4
    # pubsub: messages/s published in total, over every channel
    pubsub_connections: int = 1000
    pubsub_channels: int = 50
    pubsub_rates: tuple[float, ...] = (
        50,
        150,
        250,
        400,
        1000,
        2000,
        4000,
        6000,
        9000,
        13000,
        19000,
        28000,
        40000,
    )
    # nodes: events/s on one channel; every node's clients receive each
    nodes_connections: int = 1000  # per node
    nodes_rates: tuple[float, ...] = (5, 15, 40, 80, 150, 250, 400, 600, 900)
    event_bytes: int = 100


FULL = RedisSettings()
QUICK = RedisSettings(
    repeats=1,
    step_seconds=1.0,
    pubsub_connections=200,
    pubsub_channels=10,
    pubsub_rates=(50, 400, 2000),
    nodes_connections=200,
    nodes_rates=(5, 50, 200),
)


def settings_for(ctx: Context) -> RedisSettings:
    quick = ctx.settings.mode == "quick"
    s = QUICK if quick else FULL
    if ctx.settings.repeats != (BASE_QUICK if quick else BASE_FULL).repeats:  # --repeats
        s = dataclasses.replace(s, repeats=ctx.settings.repeats)
    if ctx.connections:
        n = ctx.connections[0]
        s = dataclasses.replace(s, pubsub_connections=n, nodes_connections=n)
    return s


# -- redis-server -------------------------------------------------------------------------


class RedisServer:
    """A private redis-server (scripts/redis.sh) on the client core; started empty."""

    def __init__(self, root: Path, s: RedisSettings, *, core: int, nice: int, log: Path) -> None:
        self.root = root
        self.port = s.port
        self.dir = root / s.data_dir
        self.core = core
        self.nice = nice
        self.log = log
        self.pid = 0
        self.client: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _script(self, action: str) -> str:
        env = {
            **os.environ,
            "SESSIONSTREAM_REDIS_PORT": str(self.port),
            "SESSIONSTREAM_REDIS_DIR": str(self.dir),
        }
        # The daemon inherits the affinity of the script that starts it.
        cmd = ["taskset", "-c", str(self.core), "bash", "scripts/redis.sh", action]
        done = subprocess.run(
            cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=60
        )
        with self.log.open("a") as out:
            out.write(f"\n=== {' '.join(cmd)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise ServerError(f"scripts/redis.sh {action} failed: {done.stderr.strip()[-300:]}")
        return done.stdout

    def __enter__(self) -> RedisServer:
        self._script("stop")
        shutil.rmtree(self.dir, ignore_errors=True)  # no stream or AOF of an earlier run
        self._script("start")
        self.pid = int((self.dir / "redis.pid").read_text().strip())
        set_autogroup_nice(self.pid, self.nice)
        self.client = redis.Redis.from_url(self.url, decode_responses=True)
        self.client.client_setname(RUNNER_CLIENT)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        self._script("stop")

    def cpu(self) -> float:
        return cpu_seconds([self.pid])

    def redis(self) -> redis.Redis:
        assert self.client is not None
        return self.client

    def clients(self) -> Row:
        """Connections Redis has open, the runner's and the publisher's left out."""
        listing = self.redis().client_list()
        others = [c for c in listing if c.get("name") not in (RUNNER_CLIENT, PUBLISHER_CLIENT)]
        subscribed = [c for c in others if int(c.get("sub", 0)) > 0 or int(c.get("psub", 0)) > 0]
        info = self.redis().info("clients")
        return {
            "connected_clients": int(info["connected_clients"]),
            "server_connections": len(others),
            "pubsub_connections": len(subscribed),
        }

    def subscriptions(self, channels: list[str]) -> int:
        numsub = self.redis().pubsub_numsub(*channels) if channels else []
        return sum(int(n) for _, n in numsub) + int(self.redis().pubsub_numpat())


def redis_sockets(pid: int, port: int) -> int:
    """ESTABLISHED TCP sockets of process ``pid`` whose peer is ``port`` on loopback."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    count = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "01" and int(f[2].split(":")[1], 16) == port and f[9] in inodes:
                count += 1
    return count


# -- the publisher process ------------------------------------------------------------------


class Publisher:
    """``runner.redis_publisher`` on the client core: one command per step."""

    def __init__(
        self, ctx: Context, url: str, channels: int, *, core: int, nice: int, log: Path
    ) -> None:
        root = ctx.paths.root
        cmd = [
            *nice_prefix(nice),
            "taskset",
            "-c",
            str(core),
            str(ctx.paths.python),
            "-m",
            "runner.redis_publisher",
            "--url",
            url,
            "--channels",
            str(channels),
        ]
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root / "bench")},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        set_autogroup_nice(self.proc.pid, nice)
        self._answer()  # {"ready": true}

    def _answer(self, timeout: float = 30) -> Row:
        assert self.proc.stdout is not None
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(self._readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not out or not out[0]:
            raise LoadgenError(f"no answer from the publisher; see {self._log.name}")
        result: Row = json.loads(out[0])
        return result

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def start(self, rate: float, seconds: float, size: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"rate": rate, "seconds": seconds, "size": size}) + "\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 30) -> Row:
        return self._answer(timeout)

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# -- one measured step ----------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    at: float
    servers: list[float]
    loadgens: list[float]
    redis: float
    publisher: float
    cores: dict[int, CoreTimes]


@dataclass
class Rig:
    """What one run measures: servers (one per loadgen), Redis, optional publisher."""

    servers: list[Server]
    loadgens: list[Loadgen]
    rds: RedisServer
    publisher: Publisher | None = None

    def snapshot(self) -> Snapshot:
        return Snapshot(
            time.monotonic(),
            [cpu_seconds(s.pids()) for s in self.servers],
            [lg.cpu() for lg in self.loadgens],
            self.rds.cpu(),
            self.publisher.cpu() if self.publisher else 0.0,
            core_times(),
        )


def per_us(seconds: float, deliveries: int) -> float | None:
    return round(seconds * 1e6 / deliveries, 3) if deliveries > 0 else None


def measure(
    rig: Rig,
    *,
    rate: float,
    seconds: float,
    tail: float,
    size: int,
    expected_per_node: Callable[[int], list[int]],
    publish: Callable[[float, float, int], None],
    published: Callable[[], Row],
) -> Row:
    """Publish ``rate`` events/s for ``seconds`` and measure until ``tail`` s after.
    ``expected_per_node(events)`` gives each loadgen's expected deliveries."""
    for lg in rig.loadgens:
        lg.mark()
    before = rig.snapshot()
    load0 = loadavg()[0]
    publish(rate, seconds, size)
    # Connections counted while streaming, halfway through the publishing time.
    time.sleep(seconds / 2)
    clients = rig.rds.clients()
    clients["node_sockets"] = [redis_sockets(s.pid, rig.rds.port) for s in rig.servers]
    time.sleep(seconds / 2 + tail)
    after = rig.snapshot()
    intervals = [lg.mark() for lg in rig.loadgens]
    pub = published()
    events = int(pub.get("published", round(rate * seconds)))
    expected = expected_per_node(events)
    wall = max(1e-9, after.at - before.at)
    nodes = []
    for i, iv in enumerate(intervals):
        d = int(iv["deliveries"])
        cpu = after.servers[i] - before.servers[i]
        lg_cpu = after.loadgens[i] - before.loadgens[i]
        nodes.append(
            {
                "port": rig.servers[i].port,
                "expected_deliveries": expected[i],
                "deliveries": d,
                "delivered_share": round(d / expected[i], 4) if expected[i] else None,
                "deliveries_per_s": round(d / seconds, 1),
                "latency_us": iv["latency_us"],
                "latency_cdf": iv["latency_cdf"],
                "gaps": iv["gaps"],
                "missed_events": iv["missed_events"],
                "duplicates": iv["duplicates"],
                "closed_by_server": iv["closed_by_server"],
                "open": iv["open"],
                "server_cpu_s": round(cpu, 3),
                "server_cpu_share": round(cpu / wall, 4),
                "server_cpu_us_per_delivery": per_us(cpu, d),
                "loadgen_cpu_share": round(lg_cpu / wall, 4),
            }
        )
    deliveries = sum(n["deliveries"] for n in nodes)
    server_cpu = sum(after.servers) - sum(before.servers)
    redis_cpu = after.redis - before.redis
    publisher_cpu = after.publisher - before.publisher
    total_expected = sum(expected)
    return {
        "rate": rate,
        "seconds": seconds,
        "size": size,
        "events": events,
        "publisher": pub,
        "expected_deliveries": total_expected,
        "offered_deliveries_per_s": round(total_expected / seconds, 1),
        "deliveries": deliveries,
        "delivered_share": round(deliveries / total_expected, 4) if total_expected else None,
        "deliveries_per_s": round(deliveries / seconds, 1),
        # The slowest node's quantiles stand for the total (no histogram merge).
        "p50_us": max(n["latency_us"]["p50"] for n in nodes),
        "p99_us": max(n["latency_us"]["p99"] for n in nodes),
        "nodes": nodes,
        "redis_clients": clients,
        "wall_s": round(wall, 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_share": round(server_cpu / wall, 4),
        "server_cpu_us_per_delivery": per_us(server_cpu, deliveries),
        "redis_cpu_s": round(redis_cpu, 3),
        "redis_cpu_share": round(redis_cpu / wall, 4),
        "redis_cpu_us_per_delivery": per_us(redis_cpu, deliveries),
        "publisher_cpu_share": round(publisher_cpu / wall, 4),
        "loadavg_1m": [load0, loadavg()[0]],
        **core_delta(before.cores, after.cores),
    }


def judge(step: Row, s: RedisSettings) -> tuple[list[str], bool]:
    """(why the step fails, whether the failure is hard: no higher rate can pass)."""
    why = []
    if any(n["latency_us"]["p99"] > s.p99_limit_ms * 1000 for n in step["nodes"]):
        why.append("p99")
    if any((n["delivered_share"] or 0) < s.min_delivered for n in step["nodes"]):
        why.append("short")
    if any(n["closed_by_server"] for n in step["nodes"]):
        why.append("clients_dropped")
    # The publisher could not offer the rate (it shares the client core): not the server's
    # limit, but no higher rate is measurable either.
    if float(step["publisher"].get("wall_s", 0)) > 1.2 * step["seconds"]:
        why.append("publisher_bound")
    hard = bool(why) and (
        "short" in why
        or "clients_dropped" in why
        or "publisher_bound" in why
        or step["p99_us"] > 3 * s.p99_limit_ms * 1000
        # Every server shares the one server core.
        or step["server_cpu_share"] >= 0.9
        or any(n["loadgen_cpu_share"] >= 0.9 for n in step["nodes"])
    )
    return why, hard


def settle(loadgens: list[Loadgen], limit_s: float = 12.0) -> float:
    """Wait until no loadgen has seen a delivery for 0.5 s (a backlog has drained)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        time.sleep(0.5)
        if sum(int(lg.mark()["deliveries"]) for lg in loadgens) == 0:
            break
    return round(time.monotonic() - t0, 2)


def ladder(
    ctx: Context,
    s: RedisSettings,
    rig: Rig,
    rates: tuple[float, ...],
    expected_per_node: Callable[[int], list[int]],
    publish: Callable[[float, float, int], None],
    published: Callable[[], Row],
) -> list[Row]:
    """The fixed rates in turn until a hard failure or ``max_fails`` failures in a row."""
    kw = {"expected_per_node": expected_per_node, "publish": publish, "published": published}
    # Warm-up (not reported): first-publish allocations, lazy imports, the subscriptions.
    measure(rig, rate=rates[0], seconds=1.0, tail=0.3, size=s.event_bytes, **kw)
    settle(rig.loadgens)
    steps: list[Row] = []
    fails_in_row = 0
    for rate in rates:
        step = measure(
            rig, rate=rate, seconds=s.step_seconds, tail=s.step_tail, size=s.event_bytes, **kw
        )
        step["fails"], step["hard_failure"] = judge(step, s)
        steps.append(step)
        c = step["redis_clients"]
        ctx.say(
            f"    {rate:>6g} ev/s {step['deliveries_per_s']:>9.0f} del/s"
            f"  p50 {step['p50_us'] / 1000:6.1f} ms  p99 {step['p99_us'] / 1000:6.1f} ms"
            f"  srv {step['server_cpu_share']:.0%} ({step['server_cpu_us_per_delivery']} µs/del)"
            f"  redis {step['redis_cpu_share']:.0%} ({step['redis_cpu_us_per_delivery']} µs/del,"
            f" {c['server_connections']} conns)"
            f"  lg {max(n['loadgen_cpu_share'] for n in step['nodes']):.0%}"
            f" pub {step['publisher_cpu_share']:.0%} core1 {step.get('core1_busy', 0):.0%}"
            f"  {','.join(step['fails']) or 'ok'}{' (hard)' if step['hard_failure'] else ''}"
        )
        if step["fails"]:
            fails_in_row += 1
            step["settled_s"] = settle(rig.loadgens)
            if step["hard_failure"] or fails_in_row >= s.max_fails:
                break
        else:
            fails_in_row = 0
    return steps


# -- runs -------------------------------------------------------------------------------------

PUBSUB_SERVERS = ("s", "a")
NODES_CONFIGS = ("1n", "2n")


def pubsub_spec(key: str, rds: RedisServer, prefix: str) -> ServerSpec:
    if key == "s":
        return dataclasses.replace(
            SERVERS["s"],
            label="(s) sessionstream, native delivery, one PSUBSCRIBE per node",
            transports=("sse",),
            env=(
                ("SESSIONSTREAM_REDIS_URL", rds.url),
                ("SESSIONSTREAM_REDIS_KEY_PREFIX", prefix),
                ("SESSIONSTREAM_REDIS_STREAMS", "false"),
                ("SESSIONSTREAM_REDIS_SUBSCRIBE", "crawl:*:progress"),
                ("SESSIONSTREAM_REDIS_SESSION_STORE", "false"),
            ),
        )
    return ServerSpec(
        "a",
        "(a) seed 001: one redis.asyncio SUBSCRIBE per connection",
        ("sse",),
        "redis_per_connection",
        env=(("BENCH_REDIS_URL", rds.url),),
    )


def nodes_spec(rds: RedisServer, prefix: str) -> ServerSpec:
    return dataclasses.replace(
        SERVERS["s"],
        label="(s) sessionstream, native delivery, Redis stream",
        transports=("sse",),
        env=(
            ("SESSIONSTREAM_REDIS_URL", rds.url),
            ("SESSIONSTREAM_REDIS_KEY_PREFIX", prefix),
            ("SESSIONSTREAM_REDIS_STREAMS", "true"),
            ("SESSIONSTREAM_REDIS_SESSION_STORE", "false"),
        ),
    )


def make_server(ctx: Context, spec: ServerSpec) -> Server:
    return Server(
        spec,
        ctx.paths,
        next(ctx.ports),
        core=SERVER_CORE,
        heartbeat=ctx.settings.heartbeat,
        log=ctx.logdir / "servers.log",
        nice=ctx.nice,
    )


def guarded_redis(rec: Record, body: Callable[[], None]) -> Record:
    """``guarded``, with Redis errors recorded like the others instead of ending the run."""

    def run_body() -> None:
        try:
            body()
        except redis.RedisError as exc:
            raise ServerError(f"Redis: {type(exc).__name__}: {exc}") from exc

    return guarded(rec, run_body)


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise ServerError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)
    return round(time.monotonic() - t0, 2)


def redis_healthy(srv: Server) -> bool:
    try:
        section = srv.stats(timeout=2).get("redis") or {}
    except (ServerError, OSError):
        return False
    return section.get("status") == "healthy"


def start_loadgen(
    ctx: Context, s: RedisSettings, srv: Server, url: str, n: int, extra: list[str]
) -> Loadgen:
    return Loadgen(
        ctx.paths.loadgen,
        url,
        n,
        core=CLIENT_CORE,
        log=ctx.logdir / "loadgen.log",
        ramp=s.ramp,
        extra=["--connect-timeout", "30", *extra],
        nice=ctx.nice,
    )


def ready_fields(ctx: Context, srv: Server, lg: Loadgen, n: int) -> Record:
    ready = lg.ready(timeout=n / 100 + 60)
    ready["server_threads"] = threads(srv.pid)
    check_delivery(ctx, srv, ready)
    return ready


def pubsub_run(ctx: Context, s: RedisSettings, rds: RedisServer, key: str, rep: int) -> Record:
    n, channels = s.pubsub_connections, s.pubsub_channels
    rec = base_record("redis", key, "sse", n, rep)
    rec.update(part="pubsub", channels=channels)
    names = [f"crawl:{i}:progress" for i in range(channels)]
    # Clients on channel i: loadgen gives client j the channel j % channels.
    per_channel = [len(range(i, n, channels)) for i in range(channels)]

    def body() -> None:
        spec = pubsub_spec(key, rds, f"bench-{key}-{rep}-{time.time_ns()}")
        rec["server_env"] = dict(spec.env)
        with contextlib.ExitStack() as stack:
            srv = stack.enter_context(make_server(ctx, spec))
            if key == "s":
                rec["redis_ready_s"] = wait_for("Redis health", lambda: redis_healthy(srv), 20)
            url = f"http://127.0.0.1:{srv.port}/stream/sse?channel=crawl:{{k}}:progress"
            lg = start_loadgen(ctx, s, srv, url, n, ["--url-spread", str(channels)])
            stack.callback(lg.kill)
            rec["ready"] = ready_fields(ctx, srv, lg, n)
            # (a) subscribes per connection once its response has started; (s) one pattern.
            wanted = int(rec["ready"]["connections_ok"]) if key == "a" else 1
            rec["subscribed_s"] = wait_for(
                "the subscriptions", lambda: rds.subscriptions(names) >= wanted, 30
            )
            pub = Publisher(
                ctx,
                rds.url,
                channels,
                core=CLIENT_CORE,
                nice=ctx.nice,
                log=ctx.logdir / "publisher.log",
            )
            stack.callback(pub.close)
            rig = Rig([srv], [lg], rds, pub)
            share = sum(per_channel) / channels  # receivers per message, on average

            def expected(events: int) -> list[int]:
                # Messages go round robin over the channels, from where the last step ended.
                return [round(events * share)]

            rec["steps"] = ladder(
                ctx,
                s,
                rig,
                s.pubsub_rates,
                expected,
                pub.start,
                pub.result,
            )
            rec["final"] = {k: v for k, v in lg.finish(timeout=60).items() if k != "latency_cdf"}
            rec["server_stats_end"] = srv.stats()
            rec["cpu_check_end"] = cpu_check(srv.pid)

    return guarded_redis(rec, body)


def nodes_run(ctx: Context, s: RedisSettings, rds: RedisServer, config: str, rep: int) -> Record:
    n = s.nodes_connections
    count = 2 if config == "2n" else 1
    rec = base_record("redis", config, "sse", n * count, rep)
    rec.update(part="nodes", nodes=count, connections_per_node=n)

    def body() -> None:
        spec = nodes_spec(rds, f"bench-{config}-{rep}-{time.time_ns()}")
        rec["server_env"] = dict(spec.env)
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(make_server(ctx, spec)) for _ in range(count)]
            rec["redis_ready_s"] = [
                wait_for("Redis health", lambda srv=srv: redis_healthy(srv), 20) for srv in servers
            ]
            loadgens = []
            for srv in servers:
                lg = start_loadgen(ctx, s, srv, srv.stream_url("sse"), n, [])
                stack.callback(lg.kill)
                loadgens.append(lg)
            rec["ready"] = [
                ready_fields(ctx, srv, lg, n) for srv, lg in zip(servers, loadgens, strict=True)
            ]
            receivers = [int(r["connections_ok"]) for r in rec["ready"]]
            rig = Rig(servers, loadgens, rds)
            publisher = servers[0]
            published0 = [0]

            def publish(rate: float, seconds: float, size: int) -> None:
                published0[0] = int(publisher.stats().get("published", 0))
                publisher.publish(rate, seconds, size)

            def published() -> Row:
                return {"published": int(publisher.stats()["published"]) - published0[0]}

            rec["steps"] = ladder(
                ctx,
                s,
                rig,
                s.nodes_rates,
                lambda events: [events * r for r in receivers],
                publish,
                published,
            )
            rec["final"] = [
                {k: v for k, v in lg.finish(timeout=60).items() if k != "latency_cdf"}
                for lg in loadgens
            ]
            rec["server_stats_end"] = [srv.stats() for srv in servers]
            rec["cpu_check_end"] = [cpu_check(srv.pid) for srv in servers]

    return guarded_redis(rec, body)


def run(ctx: Context) -> list[Record]:
    s = settings_for(ctx)
    keys = [k for k in PUBSUB_SERVERS if not ctx.explicit_servers or k in ctx.servers]
    records: list[Record] = []
    with RedisServer(
        ctx.paths.root, s, core=CLIENT_CORE, nice=ctx.nice, log=ctx.logdir / "redis.log"
    ) as rds:
        info = rds.redis().info("server")
        meta = {
            "scenario": "redis",
            "part": "meta",
            "redis_version": info.get("redis_version"),
            "redis_pid": rds.pid,
            "redis_cpus": cpu_check(rds.pid)["cpus_allowed"],
            "settings": dataclasses.asdict(s),
        }
        records.append(meta)
        for rep in range(s.repeats):
            for key in keys:
                ctx.say(
                    f"redis pubsub {key} N={s.pubsub_connections} over {s.pubsub_channels}"
                    f" channels, repeat {rep + 1}/{s.repeats}"
                )
                records.append(pubsub_run(ctx, s, rds, key, rep))
        # The nodes part is sessionstream's alone: it runs when (s) does.
        configs = NODES_CONFIGS if "s" in keys else ()
        for rep in range(s.repeats):
            for config in configs:
                ctx.say(
                    f"redis nodes {config} N={s.nodes_connections}/node, repeat"
                    f" {rep + 1}/{s.repeats}"
                )
                records.append(nodes_run(ctx, s, rds, config, rep))
    return records


# -- summary and Markdown ----------------------------------------------------------------------


def step_rows(records: list[Record]) -> list[Row]:
    """Medians over repeats for every (part, server, rate) step."""
    by: dict[tuple[str, str, float], list[Row]] = {}
    for rec in records:
        if rec.get("part") not in ("pubsub", "nodes") or "error" in rec:
            continue
        for st in rec.get("steps", []):
            by.setdefault((rec["part"], rec["server"], st["rate"]), []).append(st)
    rows = []
    for (part, key, rate), steps in sorted(
        by.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])
    ):
        med = report.med
        node_count = len(steps[0]["nodes"])
        row: Row = {
            "part": part,
            "server": key,
            "rate": rate,
            "repeats": len(steps),
            "passed": sum(1 for st in steps if not st["fails"]),
            "fails": sorted({f for st in steps for f in st["fails"]}),
            "deliveries_per_s": med(st["deliveries_per_s"] for st in steps),
            "offered_deliveries_per_s": med(st["offered_deliveries_per_s"] for st in steps),
            "delivered_share": med(st["delivered_share"] for st in steps),
            "p50_ms": med(st["p50_us"] / 1000 for st in steps),
            "p99_ms": med(st["p99_us"] / 1000 for st in steps),
            "server_cpu_us": med(st["server_cpu_us_per_delivery"] for st in steps),
            "server_cpu_share": med(st["server_cpu_share"] for st in steps),
            "redis_cpu_us": med(st["redis_cpu_us_per_delivery"] for st in steps),
            "redis_cpu_share": med(st["redis_cpu_share"] for st in steps),
            "redis_connections": med(st["redis_clients"]["server_connections"] for st in steps),
            "connected_clients": med(st["redis_clients"]["connected_clients"] for st in steps),
            "node_sockets": [
                med(st["redis_clients"]["node_sockets"][i] for st in steps)
                for i in range(node_count)
            ],
            "per_node": [
                {
                    "deliveries_per_s": med(st["nodes"][i]["deliveries_per_s"] for st in steps),
                    "p99_ms": med(st["nodes"][i]["latency_us"]["p99"] / 1000 for st in steps),
                    "server_cpu_share": med(st["nodes"][i]["server_cpu_share"] for st in steps),
                }
                for i in range(node_count)
            ],
            "loadgen_cpu_share": med(
                max(n["loadgen_cpu_share"] for n in st["nodes"]) for st in steps
            ),
            "gaps": sum(n["gaps"] for st in steps for n in st["nodes"]),
            "duplicates": sum(n["duplicates"] for st in steps for n in st["nodes"]),
        }
        rows.append(row)
    return rows


def summary(records: list[Record]) -> list[Row]:
    """One row per (part, server): the highest rate every repeat passed, and its step."""
    rows = step_rows(records)
    out = []
    for key in itertools.chain(PUBSUB_SERVERS, NODES_CONFIGS):
        mine = [r for r in rows if r["server"] == key]
        if not mine:
            continue
        passing = [r for r in mine if r["passed"] == r["repeats"]]
        best = max(passing, key=lambda r: r["rate"]) if passing else None
        out.append({"part": mine[0]["part"], "server": key, "best": best, "steps": mine})
    return out


NAMES = {
    "s": "(s) sessionstream: one PSUBSCRIBE per node",
    "a": "(a) seed 001: one SUBSCRIBE per browser",
    "1n": "(1n) one node, Redis stream",
    "2n": "(2n) two nodes, one Redis stream",
}


def _f(v: float | None, digits: int = 1) -> str:
    return report.fmt(v, digits)


def markdown(section: dict[str, Any]) -> list[str]:
    summary_rows: list[Row] = section.get("summary", [])
    meta = next((r for r in section.get("records", []) if r.get("part") == "meta"), {})
    st = meta.get("settings") or dataclasses.asdict(FULL)
    out = [
        "## Redis",
        "",
        f"redis-server {meta.get('redis_version', '?')} (scripts/redis.sh, port {st['port']},"
        f" AOF on) pinned to core {CLIENT_CORE} with loadgen and the publisher; servers on core"
        f" {SERVER_CORE}. Each step publishes for {st['step_seconds']:g} s, measured until"
        f" {st['step_tail']:g} s after; a step passes at p99 ≤ {st['p99_limit_ms']:g} ms with"
        f" ≥ {st['min_delivered']:.0%} delivered; the ladder stops at a hard failure or"
        f" {st['max_fails']} failures in a row. Medians of {st['repeats']} repeats; *passed* counts"
        " the repeats that passed. *Redis conns* = connections in Redis's CLIENT LIST while"
        " streaming, the runner's and the publisher's left out. *Server µs* = utime+stime of"
        " every server process (all threads) ÷ deliveries; *Redis µs* = the redis-server"
        f" process's utime+stime ÷ deliveries. Section took {section['duration_s'] / 60:.1f} min;"
        f" load {section['loadavg_start']} → {section['loadavg_end']}.",
        "",
        f"**Pub/sub**: {st['pubsub_connections']:,} SSE clients, each its own session, over"
        f" {st['pubsub_channels']} channels `crawl:<i>:progress`"
        f" ({st['pubsub_connections'] // st['pubsub_channels']} per channel); a redis-py"
        f" publisher PUBLISHes ~{st['event_bytes']}-byte progress messages round robin over the"
        " channels (rate = messages/s in total). (s): `redis_subscribe=crawl:*:progress`,"
        " `redis_streams=false`, `redis_session_store=false`, native delivery. (a):"
        " `bench/baselines/redis_per_connection.py` under uvicorn (uvloop, httptools).",
        "",
        f"**Nodes**: {st['nodes_connections']:,} SSE clients per node on one channel;"
        " `redis_streams=true`, events published through node 0's `/bench/publish`"
        " (`hub.publish` → XADD → every node's XREAD). (2n): two uvicorn processes, both pinned"
        f" to core {SERVER_CORE}, so they share one core; each node has its own loadgen. Total"
        " p50/p99 = the slower node's.",
        "",
    ]
    best_rows = []
    for r in summary_rows:
        b = r["best"]
        best_rows.append(
            [
                NAMES.get(r["server"], r["server"]),
                "–" if b is None else f"{b['rate']:g}",
                "–" if b is None else report.num(b["deliveries_per_s"]),
                "–" if b is None else f"{_f(b['p50_ms'])} / {_f(b['p99_ms'])}",
                "–" if b is None else _f(b["server_cpu_us"], 2),
                "–" if b is None else _f(b["redis_cpu_us"], 2),
                "–" if b is None else f"{b['redis_connections']:.0f}",
            ]
        )
    out += [
        "Highest rate every repeat passed:",
        "",
        report.table(
            [
                "",
                "events/s",
                "deliveries/s",
                "p50 / p99 ms",
                "server µs/delivery",
                "Redis µs/delivery",
                "Redis conns",
            ],
            best_rows,
        ),
        "",
        "Every step:",
        "",
    ]
    rows = []
    for r in summary_rows:
        for x in r["steps"]:
            per_node = ""
            if len(x["per_node"]) > 1:
                per_node = " / ".join(
                    f"{report.num(p['deliveries_per_s'])} @ {_f(p['p99_ms'])} ms"
                    for p in x["per_node"]
                )
            rows.append(
                [
                    NAMES.get(r["server"], r["server"]).split(" ")[0],
                    f"{x['rate']:g}",
                    report.num(x["deliveries_per_s"]),
                    report.pct(x["delivered_share"]),
                    f"{_f(x['p50_ms'])} / {_f(x['p99_ms'])}",
                    per_node or "–",
                    f"{_f(x['server_cpu_us'], 2)} ({report.pct(x['server_cpu_share'])})",
                    f"{_f(x['redis_cpu_us'], 2)} ({report.pct(x['redis_cpu_share'])})",
                    f"{x['redis_connections']:.0f}",
                    report.pct(x["loadgen_cpu_share"]),
                    f"{x['passed']}/{x['repeats']}"
                    + (f" ({','.join(x['fails'])})" if x["fails"] else ""),
                ]
            )
    out += [
        report.table(
            [
                "",
                "events/s",
                "deliveries/s",
                "delivered",
                "p50 / p99 ms",
                "per node: del/s @ p99",
                "server µs/del (core share)",
                "Redis µs/del (core share)",
                "Redis conns",
                "loadgen",
                "passed",
            ],
            rows,
        ),
        "",
    ]
    errors = [r["error"] for r in section.get("records", []) if "error" in r]
    if errors:
        out += ["Errors:", "", *[f"- `{e}`" for e in errors], ""]
    return out
