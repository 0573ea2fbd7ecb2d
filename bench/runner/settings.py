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
    ladder_start: float  # deliveries/s of the first step
    ladder_max: float  # deliveries/s beyond which the ladder stops (client limit)
    ladder_max_steps: int
    step_seconds: float  # publishing time of one step
    step_tail: float  # measured time after publishing ends
    step_gap: float  # pause between steps
    p99_limit_ms: float
    min_delivered: float  # share of the expected deliveries a passing step must see
    idle_hold: float  # idle time at full connection count before publishing

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

    # Native microbenchmark
    micro_subscribers: int
    micro_repeats: int

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


FULL = Settings(
    mode="full",
    repeats=3,
    heartbeat=5.0,
    ramp=2000,
    event_bytes=100,
    fanout_connections=(1000, 10000),
    ladder_start=20_000,
    ladder_max=1_600_000,
    ladder_max_steps=14,
    step_seconds=2.5,
    step_tail=0.6,
    step_gap=0.5,
    p99_limit_ms=50.0,
    min_delivered=0.95,
    idle_hold=6.0,
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
