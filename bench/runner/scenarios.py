"""The benchmark scenarios. Each returns plain JSON-ready records, one per run; repeats
are interleaved across servers so that a burst of outside load hits all of them."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.loadgen import Loadgen, LoadgenError
from runner.measure import Reading, publish_step, usage
from runner.servers import SERVERS, Paths, Server, ServerError
from runner.settings import CLIENT_CORE, SERVER_CORE, Settings
from runner.system import Sampler, cpu_check, loadavg, threads

Record = dict[str, Any]
Target = tuple[str, str]  # (server key, transport)
SETTLE_AFTER_LARGE_S = 2.0


@dataclass
class Context:
    paths: Paths
    settings: Settings
    logdir: Path
    servers: list[str]
    transports: list[str] | None
    connections: tuple[int, ...] | None
    say: Callable[[str], None]
    nice: int = 0
    explicit_servers: bool = False
    ports: Iterator[int] = field(default_factory=lambda: itertools.count(18300))
    # Idle samples taken by fan-out runs, reused by the idle scenario (same server,
    # transport, connection count and repeat): saves a 10k-connection ramp per server.
    idle_from_fanout: dict[tuple[str, str, int, int], Record] = field(default_factory=dict)

    def targets(self, wanted: list[Target], optional: tuple[str, ...] = ()) -> list[Target]:
        """``wanted`` narrowed by --servers/--transports; servers in ``optional`` only run
        when --servers names them."""
        return [
            (k, t)
            for k, t in wanted
            if k in self.servers
            and (k not in optional or self.explicit_servers)
            and t in SERVERS[k].transports
            and (self.transports is None or t in self.transports)
        ]

    def server(self, key: str) -> Server:
        # A fresh port per run: TIME_WAIT sockets of the last run never collide.
        return Server(
            SERVERS[key],
            self.paths,
            next(self.ports),
            core=SERVER_CORE,
            heartbeat=self.settings.heartbeat,
            log=self.logdir / "servers.log",
            nice=self.nice,
        )

    def loadgen(
        self, server: Server, transport: str, connections: int, extra: list[str] | None = None
    ) -> Loadgen:
        return Loadgen(
            self.paths.loadgen,
            server.stream_url(transport),
            connections,
            core=CLIENT_CORE,
            log=self.logdir / "loadgen.log",
            ramp=self.settings.ramp,
            ws_channel="bench" if transport == "ws" else None,
            extra=["--connect-timeout", "30", *(extra or [])],
            nice=self.nice,
        )


@contextmanager
def session(
    ctx: Context, key: str, transport: str, connections: int, extra: list[str] | None = None
) -> Iterator[tuple[Server, Loadgen, Sampler, Record]]:
    """A fresh server, an RSS sampler, and loadgen with every client connected."""
    with ctx.server(key) as srv:
        # The probe records the connection count beside RSS: RSS against connections.
        sampler = Sampler(srv.pids, period=0.25, probe=lambda: srv.stats(timeout=2)["connections"])
        time.sleep(0.3)
        rss0 = srv.rss()
        sampler.start()
        t0 = time.monotonic()
        lg = ctx.loadgen(srv, transport, connections, extra)
        try:
            ready = lg.ready(timeout=connections / 100 + 60)
            # The count is only needed for the ramp's curve; /bench/stats is not free on
            # every server (O(sessions) in sessionstream's metrics), so stop asking.
            sampler.probe = None
            ready["rss_before"] = rss0
            ready["ramp_started"] = t0
            ready["server_threads"] = threads(srv.pid)
            check_delivery(ctx, srv, ready)
            yield srv, lg, sampler, ready
            # Evidence that the CPU figures cover every thread of the server process.
            ready["cpu_check_end"] = cpu_check(srv.pid)
        finally:
            lg.kill()
            sampler.stop()
    if connections >= 5000:
        # Tearing down thousands of loopback sockets keeps the kernel busy for a moment:
        # let it finish before the next server starts.
        time.sleep(SETTLE_AFTER_LARGE_S)


def check_delivery(ctx: Context, srv: Server, ready: Record) -> None:
    """Which path delivers the streams (sessionstream servers report it): a native
    server whose streams fell back to Python, or the other way round, is flagged."""
    if srv.spec.kind != "sessionstream":
        return
    time.sleep(0.5)  # WebSocket subscribes are handled after the handshake completes
    try:
        stats = srv.stats()
    except (ServerError, OSError) as exc:
        ready["delivery_error"] = str(exc)
        return
    counts = stats.get("delivery") or {}
    ready["delivery"] = counts
    ready["engine_metrics"] = stats.get("engine")
    native = sum((counts.get("native") or {}).values())
    python = sum((counts.get("python") or {}).values())
    wrong = python if srv.spec.native else native
    if wrong:
        ready["delivery_mismatch"] = wrong
        ctx.say(
            f"  warning: {srv.spec.label}: {native} native, {python} Python-delivered streams"
            f" (fallback reasons: {stats.get('fallback_reasons') or 'see /health'})"
        )


def base_record(scenario: str, key: str, transport: str, connections: int, rep: int) -> Record:
    return {
        "scenario": scenario,
        "server": key,
        "transport": transport,
        "connections": connections,
        "repeat": rep,
        "started": time.strftime("%H:%M:%S"),
        "loadavg_before": loadavg(),
    }


def final_fields(final: Record) -> Record:
    keep = (
        "connections_ok",
        "connect_errors",
        "connect_error_reasons",
        "closed_by_server",
        "close_reasons",
        "stalled",
        "stalled_dropped",
        "stalled_close_reasons",
        "deliveries_total",
        "gaps",
        "missed_events",
        "duplicates",
        "gap_frames",
        "reset_frames",
        "other_events",
        "server_errors",
        "resumes",
        "resumes_per_s",
        "resume_span_s",
        "reconnects",
        "resume_errors",
        "resume_incomplete",
        "resume_verified",
        "resume_gaps",
        "resume_missed_events",
        "resume_duplicates",
        "storm_deliveries",
        "storm_s",
        "ramp_s",
        "cpu_s",
        "wall_s",
        "latency_us",
    )
    return {k: final[k] for k in keep if k in final}


def guarded(rec: Record, body: Callable[[], None]) -> Record:
    """Run one measurement; a failure is recorded, not fatal to the whole run."""
    try:
        body()
    except (ServerError, LoadgenError, OSError, ValueError, KeyError) as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"
    rec["loadavg_after"] = loadavg()
    return rec


# -- fan-out -------------------------------------------------------------------


def judge(step: Record, s: Settings, limit_ms: float) -> list[str]:
    """Why a step does not count as sustained (empty: it does)."""
    why = []
    if step["latency_us"]["p99"] > limit_ms * 1000:
        why.append("p99")
    share = step["delivered_share"]
    if share is None or share < s.min_delivered:
        why.append("short")
    if step["closed_by_server"]:
        why.append("clients_dropped")
    return why


def next_rate(rate: float, step: Record, limit_ms: float) -> float:
    # Latency headroom, not CPU share, decides the stride: a server that batches writes
    # uses all the CPU it gets long before its limit. x3 while both processes are nearly
    # idle, x2 while both are under 45%, x1.41 with latency headroom, x1.19 near the bound.
    busiest = max(step["server_cpu_share"], step["loadgen_cpu_share"], 0.05)
    if step["latency_us"]["p99"] <= limit_ms * 600:
        factor = min(3.0, max(1.41, 0.9 / busiest))
    else:
        factor = 1.19
    return rate * factor


def is_hard_failure(step: Record, limit_ms: float) -> bool:
    """A failing step beyond which higher rates cannot pass: deliveries fall short, the
    server drops clients, p99 far over the bound, or the server's core is full. A p99
    failure alone is soft: with one write per client per event p99 has a floor of
    about N sends that does not grow with the rate, and a batching server can stay at
    that floor while its rate climbs, so a noisy step at the floor must not end the
    ladder."""
    fails = step["fails"]
    return (
        "short" in fails
        or "clients_dropped" in fails
        or step["latency_us"]["p99"] > 3 * limit_ms * 1000
        or step["server_cpu_share"] >= 0.9
        or step["loadgen_cpu_share"] >= 0.9
    )


def round_rate(value: float) -> float:
    digits = 2 - int(math.floor(math.log10(value)))
    return round(value, digits)


MIN_EVENTS_PER_STEP = 4  # at low rates a step lasts longer, so p99 rests on several events
MAX_DOWN_STEPS = 2  # halvings tried when nothing at or above the first rate passes
MAX_SOFT_STREAK = 2  # p99-only failures in a row before they count as the limit


def first_rate(s: Settings, n: int) -> float:
    """Events/s of the first step: ``ladder_start`` deliveries/s, at least 1 event/s."""
    return round_rate(max(1.0, s.ladder_start / n))


def ladder(
    ctx: Context, srv: Server, lg: Loadgen, sampler: Sampler, receivers: int, n: int
) -> list[Record]:
    """Raise the rate until a step fails hard, then narrow the gap between the highest
    passing and the lowest failing rate to ~19%. Soft (p99-only) failures keep the
    ladder climbing, at most twice in a row. When nothing passes, halve below the first
    rate (twice at most) to find a passing point or show the latency floor."""
    s = ctx.settings
    limit = s.p99_limit_for(n)
    steps: list[Record] = []
    first = rate = first_rate(s, n)
    best_pass = 0.0
    hard_fail = math.inf
    soft_streak = 0
    downs = 0
    for _ in range(s.ladder_max_steps):
        seconds = max(s.step_seconds, MIN_EVENTS_PER_STEP / rate)
        step = publish_step(
            srv,
            lg,
            sampler,
            rate=rate,
            seconds=seconds,
            tail=s.step_tail,
            size=s.event_bytes,
            receivers=receivers,
        )
        step["fails"] = judge(step, s, limit)
        step["p99_limit_ms"] = limit
        step["client_bound"] = step["loadgen_cpu_share"] >= 0.9
        steps.append(step)
        hard = bool(step["fails"]) and (
            is_hard_failure(step, limit) or soft_streak >= MAX_SOFT_STREAK
        )
        step["hard_failure"] = hard
        ctx.say(
            f"    {rate:>8g} ev/s  {step['deliveries_per_s']:>10.0f} del/s"
            f"  p50 {step['latency_us']['p50'] / 1000:7.1f} ms"
            f"  p99 {step['latency_us']['p99'] / 1000:7.1f} ms"
            f"  srv {step['server_cpu_share']:.0%} lg {step['loadgen_cpu_share']:.0%}"
            f"  core0 {step.get('core0_busy', 0):.0%}"
            f"  {','.join(step['fails']) or 'ok'}{' (hard)' if hard else ''}"
        )
        if step["closed_by_server"]:
            break  # the server dropped clients: later steps would measure fewer
        if not step["fails"]:
            best_pass = max(best_pass, rate)
            soft_streak = 0
            nxt = next_rate(rate, step, limit)
            if nxt * receivers > s.ladder_max:
                break
            if nxt >= hard_fail / 1.19:
                nxt = math.sqrt(best_pass * hard_fail)
            time.sleep(s.step_gap)
        elif not hard:
            soft_streak += 1
            nxt = next_rate(rate, step, limit)
            if nxt >= hard_fail / 1.19 or nxt * receivers > s.ladder_max:
                break
            time.sleep(s.step_gap)
        else:
            hard_fail = min(hard_fail, rate)
            soft_streak = 0
            if best_pass:
                nxt = math.sqrt(best_pass * hard_fail)
            elif downs < MAX_DOWN_STEPS:
                downs += 1
                first = nxt = min(first, rate) / 2
            else:
                break
            # A failing step may leave a backlog: let it drain before the next one.
            step["settled_s"] = settle(lg)
        nxt = round_rate(nxt)
        if best_pass and hard_fail < math.inf and hard_fail / best_pass <= 1.2:
            break  # bracketed within ~19%
        if nxt == rate or (best_pass and nxt <= best_pass) or nxt >= hard_fail:
            break
        rate = nxt
    return steps


def settle(lg: Loadgen, limit_s: float = 12.0) -> float:
    """Wait until a backlog left by the last step has drained: an interval of 0.5 s with
    no delivery (at most ``limit_s``). Returns the time waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        time.sleep(0.5)
        if int(lg.mark()["deliveries"]) == 0:
            break
    return round(time.monotonic() - t0, 2)


def extra_step(
    ctx: Context, srv: Server, lg: Loadgen, sampler: Sampler, receivers: int, rate: float, n: int
) -> Record:
    """One step outside the ladder (a fixed point, or (s)'s rate), judged against the
    ladder's bound; then the backlog it may leave drains before anything else runs."""
    s = ctx.settings
    step = publish_step(
        srv,
        lg,
        sampler,
        rate=rate,
        seconds=max(s.step_seconds, MIN_EVENTS_PER_STEP / rate),
        tail=s.step_tail,
        size=s.event_bytes,
        receivers=receivers,
    )
    limit = s.p99_limit_for(n)
    step["fails"] = judge(step, s, limit)
    step["p99_limit_ms"] = limit
    ctx.say(
        f"    {rate:>8g} ev/s  {step['deliveries_per_s']:>10.0f} del/s"
        f"  p50 {step['latency_us']['p50'] / 1000:7.1f} ms"
        f"  p99 {step['latency_us']['p99'] / 1000:7.1f} ms"
        f"  srv {step['server_cpu_share']:.0%} lg {step['loadgen_cpu_share']:.0%}"
        f"  {','.join(step['fails']) or 'ok'} (outside the ladder)"
    )
    step["settled_s"] = settle(lg)
    return step


def fanout_run(
    ctx: Context, key: str, transport: str, n: int, rep: int, s_rate: float | None = None
) -> Record:
    """One set of connections: for the servers in ``compare_at_s`` one step at ``s_rate``
    ((s)'s highest passing rate in this repeat), the fixed points for this N, then the
    ladder. The single steps come first, while every client is still connected (a
    ladder ends where a server falls behind and may drop clients); after each the
    runner waits for its backlog to drain."""
    s = ctx.settings
    rec = base_record("fanout", key, transport, n, rep)
    rec["p99_limit_ms"] = s.p99_limit_for(n)

    def body() -> None:
        with session(ctx, key, transport, n) as (srv, lg, sampler, ready):
            rec["ready"] = ready
            receivers = int(ready["connections_ok"])
            # Idle at full count with heartbeats on: the idle-memory figure for free.
            time.sleep(s.hold_for(n))
            rec["idle"] = idle_fields(srv, sampler, ready, receivers)
            ctx.idle_from_fanout[(key, transport, n, rep)] = rec["idle"]
            # Warm-up (not reported): first-publish allocations, caches, lazy imports.
            warm = first_rate(s, n)
            publish_step(
                srv,
                lg,
                sampler,
                rate=warm,
                seconds=max(1.0, 2 / warm),
                tail=0.3,
                size=s.event_bytes,
                receivers=receivers,
            )
            settle(lg)
            if s_rate and key in s.compare_at_s and n in s.compare_at_s_connections:
                rec["at_s_rate"] = extra_step(ctx, srv, lg, sampler, receivers, s_rate, n)
            rec["points"] = []
            for m, deliveries in s.fanout_points:
                if m != n:
                    continue
                step = extra_step(ctx, srv, lg, sampler, receivers, round_rate(deliveries / n), n)
                step["point_deliveries_per_s"] = deliveries
                rec["points"].append(step)
            time.sleep(s.step_gap)
            rec["steps"] = ladder(ctx, srv, lg, sampler, receivers, n)
            rec["final"] = final_fields(lg.finish(timeout=60))
            rec["server_stats_end"] = srv.stats()

    return guarded(rec, body)


def idle_fields(srv: Server, sampler: Sampler, ready: Record, connected: int) -> Record:
    rss = srv.rss()
    curve = [
        (int(c), r) for t, r, c in sampler.samples if c is not None and t >= ready["ramp_started"]
    ]
    return {
        "connections_ok": connected,
        "rss_before": ready["rss_before"],
        "rss_idle": rss,
        "rss_per_connection": (rss - ready["rss_before"]) / connected if connected else None,
        "rss_curve": curve,
        "ramp_s": ready.get("ramp_s"),
    }


def best_rate(rec: Record) -> float | None:
    passing = [st["rate"] for st in rec.get("steps", []) if not st["fails"]]
    return max(passing) if passing else None


def fanout(ctx: Context) -> list[Record]:
    s = ctx.settings
    keys = ["s", "p", "g", "a", "b", "r"]  # (s) first: others compare at its rate
    transports = ["sse", "ws"]
    records = []
    for n in ctx.connections or s.fanout_connections:
        for transport in transports:
            targets = ctx.targets([(k, transport) for k in keys])
            repeats = s.repeats_for(n)
            for rep in range(repeats):
                s_rate: float | None = None
                for key, _ in targets:
                    ctx.say(
                        f"fanout {key}/{transport} N={n} repeat {rep + 1}/{repeats}"
                        f" (p99 bound {s.p99_limit_for(n):g} ms)"
                    )
                    rec = fanout_run(ctx, key, transport, n, rep, s_rate)
                    if key == "s" and "error" not in rec:
                        s_rate = best_rate(rec)
                    records.append(rec)
    return records


# -- idle memory ------------------------------------------------------------------


def idle(ctx: Context) -> list[Record]:
    s = ctx.settings
    targets = ctx.targets([(k, t) for t in ("sse", "ws") for k in ("s", "p", "g", "a", "b", "r")])
    ns = ctx.connections or (s.idle_connections,)
    records = []
    for n in ns:
        for rep in range(s.repeats_for(n)):
            for key, transport in targets:
                rec = base_record("idle", key, transport, n, rep)
                shared = ctx.idle_from_fanout.get((key, transport, n, rep))
                if shared is not None:
                    rec.update(shared, source="fanout run (same server, before publishing)")
                    records.append(rec)
                    continue
                ctx.say(f"idle {key}/{transport} N={n} repeat {rep + 1}/{s.repeats_for(n)}")

                def body(
                    rec: Record = rec, key: str = key, transport: str = transport, n: int = n
                ) -> None:
                    with session(ctx, key, transport, n) as (srv, lg, sampler, ready):
                        rec["ready"] = ready
                        time.sleep(s.idle_hold)
                        rec.update(idle_fields(srv, sampler, ready, int(ready["connections_ok"])))
                        rec["final"] = final_fields(lg.finish(timeout=60))

                records.append(guarded(rec, body))
    return records


# -- slow consumers ---------------------------------------------------------------


def slow_run(ctx: Context, key: str, transport: str, stalled: bool, rep: int) -> Record:
    s = ctx.settings
    n = s.slow_connections
    rec = base_record("slow", key, transport, n, rep)
    rec["stall_fraction"] = s.slow_fraction if stalled else 0.0
    extra = ["--stall-fraction", f"{rec['stall_fraction']:g}", "--drain", f"{s.slow_drain:g}"]

    def body() -> None:
        with session(ctx, key, transport, n, extra) as (srv, lg, sampler, ready):
            rec["ready"] = ready
            receivers = int(ready["connections_ok"]) - int(ready["stalled"])
            seconds = s.slow_publish if stalled else s.slow_reference_publish
            step = publish_step(
                srv,
                lg,
                sampler,
                rate=s.slow_rate,
                seconds=seconds,
                tail=1.0,
                size=s.slow_bytes,
                receivers=receivers,
            )
            rec["step"] = step
            rec["final"] = final_fields(lg.finish(timeout=s.slow_drain + 60))
            rec["server_stats_end"] = srv.stats()
            rec["server_rss_max"] = sampler.max_rss()
            rec["rss_before"] = ready["rss_before"]

    return guarded(rec, body)


def slow(ctx: Context) -> list[Record]:
    s = ctx.settings
    # (b) shares (a)'s hub and drop policy; it runs here only when --servers names it.
    targets = ctx.targets(
        [
            ("s", "sse"),
            ("p", "sse"),
            ("g", "sse"),
            ("a", "sse"),
            ("b", "sse"),
            ("r", "sse"),
            ("s", "ws"),
            ("p", "ws"),
        ],
        optional=("b",),
    )
    if ctx.transports is None:
        targets = [t for t in targets if t[1] == "sse"]
    records = []
    for rep in range(s.repeats):
        for key, transport in targets:
            for stalled in (False, True):
                ctx.say(f"slow {key}/{transport} stall={stalled} repeat {rep + 1}/{s.repeats}")
                records.append(slow_run(ctx, key, transport, stalled, rep))
    return records


# -- reconnect storm --------------------------------------------------------------


def storm_run(ctx: Context, key: str, transport: str, rep: int) -> Record:
    s = ctx.settings
    n = s.storm_connections
    rec = base_record("storm", key, transport, n, rep)
    rate = round(s.storm_deliveries / n, 3)
    rec["rate"] = rate
    extra = [
        "--reconnect-storm",
        "--storm-duration",
        f"{s.storm_duration:g}",
        "--storm-tail",
        f"{s.storm_tail:g}",
        "--drain",
        "0",
    ]

    def body() -> None:
        with session(ctx, key, transport, n, extra) as (srv, lg, sampler, ready):
            rec["ready"] = ready
            lg.mark()
            # One publisher run spans the window before the storm and the storm itself.
            srv.publish(rate, s.storm_before + s.storm_duration + 5, s.event_bytes)
            before = Reading.take(srv, lg)
            time.sleep(s.storm_before)
            after = Reading.take(srv, lg)
            interval = lg.mark()
            rec["before_storm"] = {
                "deliveries": interval["deliveries"],
                "latency_us": interval["latency_us"],
                **usage(before, after, int(interval["deliveries"])),
            }
            storm0 = Reading.take(srv, lg)
            final = lg.finish(timeout=s.storm_duration + 60)
            storm1 = Reading.take(srv, lg)
            rec["final"] = final_fields(final)
            rec["storm_usage"] = usage(storm0, storm1, int(final.get("storm_deliveries", 0)))
            # loadgen has exited by storm1: take its CPU from its own report instead.
            lg_cpu = float(final.get("cpu_s", 0.0)) - storm0.loadgen_cpu
            wall = rec["storm_usage"]["wall_s"]
            rec["storm_usage"]["loadgen_cpu_s"] = round(lg_cpu, 3)
            rec["storm_usage"]["loadgen_cpu_share"] = round(lg_cpu / wall, 4) if wall else None
            rec["server_stats_end"] = srv.stats()
            rec["server_rss_max"] = sampler.max_rss(storm0.at, storm1.at)

    return guarded(rec, body)


def storm(ctx: Context) -> list[Record]:
    s = ctx.settings
    # (b) has (a)'s hub: no resume either; it runs here only when --servers names it.
    targets = ctx.targets(
        [
            ("s", "sse"),
            ("s", "ws"),
            ("p", "sse"),
            ("p", "ws"),
            ("g", "sse"),
            ("a", "sse"),
            ("b", "sse"),
            ("r", "sse"),
        ],
        optional=("b",),
    )
    records = []
    for rep in range(s.repeats):
        for key, transport in targets:
            ctx.say(f"storm {key}/{transport} N={s.storm_connections} repeat {rep + 1}/{s.repeats}")
            records.append(storm_run(ctx, key, transport, rep))
    return records


# -- chat round trip ----------------------------------------------------------------


def chat_run(ctx: Context, key: str, rep: int) -> Record:
    """N WebSocket clients, a share of which send ``{"type":"echo","ts":...}`` at a rate;
    the server's message handler replies with the same ts. Two phases on one set of
    connections: chat alone, then chat while events fan out to every client."""
    s = ctx.settings
    n = s.chat_connections
    rec = base_record("chat", key, "ws", n, rep)
    rec.update(chat_fraction=s.chat_fraction, chat_rate=s.chat_rate)
    extra = ["--chat-fraction", f"{s.chat_fraction:g}", "--chat-rate", f"{s.chat_rate:g}"]

    def body() -> None:
        with session(ctx, key, "ws", n, extra) as (srv, lg, sampler, ready):
            rec["ready"] = ready
            receivers = int(ready["connections_ok"])
            time.sleep(s.fanout_hold)
            phases = [("chat", 0.0)]
            if s.chat_fanout_rate > 0:
                phases.append(("chat_fanout", s.chat_fanout_rate))
            for name, rate in phases:
                # The first interval after connecting also holds the chat warm-up.
                publish_step(
                    srv,
                    lg,
                    sampler,
                    rate=0,
                    seconds=1.0,
                    tail=0,
                    size=s.event_bytes,
                    receivers=receivers,
                )
                step = publish_step(
                    srv,
                    lg,
                    sampler,
                    rate=rate,
                    seconds=s.chat_seconds,
                    tail=s.step_tail,
                    size=s.event_bytes,
                    receivers=receivers,
                )
                rec[name] = step
                chat = step.get("chat", {})
                lat = chat.get("latency_us", {})
                ctx.say(
                    f"    {name:12} {chat.get('replies', 0)}/{chat.get('sent', 0)} replies"
                    f"  p50 {lat.get('p50', 0) / 1000:6.2f} ms"
                    f"  p99 {lat.get('p99', 0) / 1000:6.2f} ms"
                    f"  errors {chat.get('errors', 0)}"
                    + (
                        f"  fan-out {step['deliveries_per_s']:.0f} del/s"
                        f" p99 {step['latency_us']['p99'] / 1000:.1f} ms"
                        if rate
                        else ""
                    )
                    + f"  srv {step['server_cpu_share']:.0%}"
                )
            final = lg.finish(timeout=60)
            rec["final"] = final_fields(final)
            rec["chat_final"] = final.get("chat")
            rec["server_stats_end"] = srv.stats()

    return guarded(rec, body)


def chat(ctx: Context) -> list[Record]:
    s = ctx.settings
    targets = ctx.targets([(k, "ws") for k in ("s", "p", "g", "a")])
    records = []
    for rep in range(s.repeats):
        for key, _ in targets:
            ctx.say(
                f"chat {key}/ws N={s.chat_connections} ({s.chat_fraction:.0%} chat at"
                f" {s.chat_rate:g}/s) repeat {rep + 1}/{s.repeats}"
            )
            records.append(chat_run(ctx, key, rep))
    return records


# -- native microbenchmark ---------------------------------------------------------


def micro(ctx: Context) -> list[Record]:
    s = ctx.settings
    binary = ctx.paths.fanout_bench
    rec: Record = {"scenario": "micro", "binary": str(binary), "subscribers": s.micro_subscribers}
    # Incremental build: the binary follows the core as it is now (a no-op when current).
    ctx.say("building fanout_bench (cmake --preset default)")
    log = (ctx.logdir / "build.log").open("ab")
    cmds = [["cmake", "--build", "--preset", "default", "--target", "fanout_bench"]]
    if not (ctx.paths.root / "build/default/build.ninja").exists():
        cmds.insert(0, ["cmake", "--preset", "default"])
    for cmd in cmds:
        done = subprocess.run(cmd, cwd=ctx.paths.root, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            rec["build_error"] = f"{' '.join(cmd)} failed; see {log.name}"
            break
    if not binary.exists():
        rec["error"] = rec.get("build_error", "fanout_bench missing")
        return [rec]
    rec["binary_mtime"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(binary.stat().st_mtime))
    runs = []
    for rep in range(s.micro_repeats):
        ctx.say(f"micro fanout_bench {s.micro_subscribers} repeat {rep + 1}/{s.micro_repeats}")
        done = subprocess.run(
            ["taskset", "-c", str(SERVER_CORE), str(binary), str(s.micro_subscribers)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            rec["error"] = f"fanout_bench exited {done.returncode}: {done.stderr.strip()[-300:]}"
            break
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    rec["runs"] = runs
    rec["loadavg"] = loadavg()
    return [rec]


def kafka(ctx: Context) -> list[Record]:
    return [
        {
            "scenario": "kafka",
            "skipped": "Kafka end-to-end (broker -> KafkaSource -> hub -> clients) is separate"
            " work; this runner only reserves its place in the results.",
        }
    ]


SCENARIOS: dict[str, Callable[[Context], list[Record]]] = {
    "fanout": fanout,
    "idle": idle,
    "slow": slow,
    "storm": storm,
    "chat": chat,
    "micro": micro,
    "kafka": kafka,
}
