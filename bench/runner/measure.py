"""One measured interval: publish at a rate, read loadgen's counters for the interval,
and charge the server's CPU time (all its processes, from /proc) to the deliveries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from runner.loadgen import Loadgen
from runner.servers import Server
from runner.system import CoreTimes, Sampler, core_delta, core_times, cpu_seconds, loadavg


@dataclass(frozen=True)
class Reading:
    at: float
    server_cpu: float
    loadgen_cpu: float
    cores: dict[int, CoreTimes]

    @staticmethod
    def take(server: Server, lg: Loadgen) -> Reading:
        return Reading(time.monotonic(), cpu_seconds(server.pids()), lg.cpu(), core_times())


def usage(before: Reading, after: Reading, deliveries: int) -> dict[str, Any]:
    """CPU figures between two readings. ``server_cpu_us_per_delivery`` is the number the
    design asks for; the per-core shares show softirq work charged to no process."""
    wall = max(1e-9, after.at - before.at)
    server_cpu = after.server_cpu - before.server_cpu
    loadgen_cpu = after.loadgen_cpu - before.loadgen_cpu
    cores = core_delta(before.cores, after.cores)
    out: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_share": round(server_cpu / wall, 4),
        "loadgen_cpu_s": round(loadgen_cpu, 3),
        "loadgen_cpu_share": round(loadgen_cpu / wall, 4),
        "server_cpu_us_per_delivery": (
            round(server_cpu * 1e6 / deliveries, 3) if deliveries > 0 else None
        ),
        **cores,
    }
    busy0 = cores.get("core0_busy")
    if busy0 is not None and deliveries > 0:
        # Everything core 0 did (process + softirq + any other job) per delivery.
        out["core0_us_per_delivery"] = round(busy0 * wall * 1e6 / deliveries, 3)
    return out


def publish_step(
    server: Server,
    lg: Loadgen,
    sampler: Sampler,
    *,
    rate: float,
    seconds: float,
    tail: float,
    size: int,
    receivers: int,
) -> dict[str, Any]:
    """Publish ``rate`` events/s for ``seconds`` and measure until ``tail`` s after.

    ``receivers`` is how many clients should get every event (stalled ones excluded);
    deliveries are compared with ``rate * seconds * receivers``. ``rate`` 0 publishes
    nothing: the interval measures what the clients do themselves (chat).
    """
    published0 = int(server.stats().get("published", 0))
    lg.mark()  # opens the interval
    before = Reading.take(server, lg)
    load0 = loadavg()[0]
    if rate > 0:
        server.publish(rate, seconds, size)
    time.sleep(seconds + tail)
    after = Reading.take(server, lg)
    interval = lg.mark()
    stats = server.stats()
    expected = round(rate * seconds) * receivers
    deliveries = int(interval["deliveries"])
    step: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "size": size,
        "receivers": receivers,
        "offered_deliveries_per_s": rate * receivers,
        "expected_deliveries": expected,
        "deliveries": deliveries,
        "delivered_share": round(deliveries / expected, 4) if expected else None,
        # Over the publishing time: what the clients actually got per second.
        "deliveries_per_s": round(deliveries / seconds, 1),
        "published": int(stats.get("published", 0)) - published0,
        "latency_us": interval["latency_us"],
        "latency_cdf": interval["latency_cdf"],
        "gaps": interval["gaps"],
        "missed_events": interval["missed_events"],
        "duplicates": interval["duplicates"],
        "closed_by_server": interval["closed_by_server"],
        "open": interval["open"],
        "server_rss": server.rss(),
        "server_rss_max": sampler.max_rss(before.at, after.at),
        "server_stats": stats,
        "loadavg_1m": [load0, loadavg()[0]],
        **usage(before, after, deliveries),
    }
    if "chat" in interval:
        step["chat"] = interval["chat"]
    return step
