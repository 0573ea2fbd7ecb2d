"""Sizes and durations of the quick and the full run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SERVER_CORE = 0
CLIENT_CORE = 1


@dataclass(frozen=True)
class Settings:
    mode: str
    repeats: int
    heartbeat: float  # every server, every scenario: idle memory includes heartbeats
    ramp: float  # connections opened per second by loadgen
    event_bytes: int

    # Fan-out ladder: publish rate raised until p99 or delivery fails.
    fanout_connections: tuple[int, ...]
    ladder_start: float  # deliveries/s of the first step (at least 1 event/s)
    ladder_max: float  # deliveries/s beyond which the ladder stops (client limit)
    ladder_max_steps: int
    step_seconds: float  # publishing time of one step
    step_tail: float  # measured time after publishing ends
    step_gap: float  # pause between steps
    # p99 bound of a passing step by connection count: (from N, ms), the last entry whose
    # N is <= the run's N applies. One write per client per event puts a floor of about
    # N x (one send + one client read) under p99, so 10,000 clients get a wider bound.
    p99_limits: tuple[tuple[int, float], ...]
    min_delivered: float  # share of the expected deliveries a passing step must see
    idle_hold: float  # idle time at full connection count before publishing (idle figure)
    fanout_hold: float  # the same at other connection counts (no idle figure taken)
    # Fixed points measured after the ladder: (N, deliveries/s), e.g. the 10k goal.
    fanout_points: tuple[tuple[int, float], ...]
    # Servers that, after their ladder, also run one step at the highest rate (s)
    # sustained in the same repeat, so CPU per delivery compares at the same step;
    # at these connection counts only.
    compare_at_s: tuple[str, ...]
    compare_at_s_connections: tuple[int, ...]
    # Repeats of the fan-out at N >= 10,000 (a 10k ladder takes ~1 min per server).
    repeats_large: int

    # Idle memory
    idle_connections: int

    # Slow consumers
    slow_connections: int
    slow_fraction: float
    slow_rate: float
    slow_bytes: int
    slow_publish: float
    slow_reference_publish: float
    slow_drain: float

    # Reconnect storm
    storm_connections: int
    storm_deliveries: float  # deliveries/s during the storm (rate = this / connections)
    storm_before: float
    storm_duration: float  # the most the storm is observed for
    storm_tail: float  # observed this long after the last client resumed

    # Chat round trip: WebSocket message -> Python handler -> reply
    chat_connections: int
    chat_fraction: float  # share of the clients that chat
    chat_rate: float  # messages/s per chatting client
    chat_seconds: float  # measured time per phase
    chat_fanout_rate: float  # events/s published during the second phase (0: skip it)

    # Native microbenchmark
    micro_subscribers: int
    micro_repeats: int

    def p99_limit_for(self, n: int) -> float:
        limit = self.p99_limits[0][1]
        for from_n, ms in self.p99_limits:
            if n >= from_n:
                limit = ms
        return limit

    def repeats_for(self, n: int) -> int:
        return min(self.repeats, self.repeats_large) if n >= 10000 else self.repeats

    def hold_for(self, n: int) -> float:
        return self.idle_hold if n == self.idle_connections else self.fanout_hold

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


FULL = Settings(
    mode="full",
    repeats=3,
    heartbeat=5.0,
    ramp=2000,
    event_bytes=100,
    fanout_connections=(1000, 10000),
    ladder_start=5_000,
    ladder_max=1_600_000,
    ladder_max_steps=14,
    step_seconds=2.0,
    step_tail=0.5,
    step_gap=0.3,
    p99_limits=((0, 50.0), (10000, 2000.0)),
    min_delivered=0.95,
    idle_hold=6.0,
    fanout_hold=1.0,
    fanout_points=((10000, 100_000.0),),
    compare_at_s=("r",),
    compare_at_s_connections=(1000,),
    repeats_large=2,
    idle_connections=10000,
    slow_connections=200,
    slow_fraction=0.1,
    slow_rate=40,
    slow_bytes=16_000,
    slow_publish=18.0,
    slow_reference_publish=8.0,
    slow_drain=3.0,
    storm_connections=10000,
    storm_deliveries=5_000,
    storm_before=3.0,
    storm_duration=45.0,
    storm_tail=3.0,
    chat_connections=1000,
    chat_fraction=0.1,
    chat_rate=5.0,
    chat_seconds=5.0,
    chat_fanout_rate=10.0,
    micro_subscribers=10000,
    micro_repeats=3,
)

QUICK = FULL.replace(
    mode="quick",
    repeats=1,
    heartbeat=2.0,
    fanout_connections=(200, 1000),
    ladder_max_steps=5,
    step_seconds=1.0,
    step_tail=0.5,
    step_gap=0.2,
    idle_hold=2.5,
    idle_connections=1000,
    fanout_points=((1000, 20_000.0),),
    compare_at_s_connections=(200, 1000),
    chat_connections=200,
    chat_seconds=2.0,
    slow_connections=50,
    slow_publish=5.0,
    slow_reference_publish=3.0,
    slow_drain=1.5,
    storm_connections=500,
    storm_before=1.5,
    storm_duration=10.0,
    storm_tail=2.0,
    micro_subscribers=1000,
    micro_repeats=1,
)
