"""Rates and recent incidents of a hub, sampled once a second from the native counters."""

from __future__ import annotations

from collections import deque

from sessionstream._core import ConnectionManager, Hub


class CounterWindow:
    """Samples of monotonically growing counters over the last ``keep`` seconds."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, float]]] = deque()

    def add(self, now: float, values: dict[str, float], keep: float) -> None:
        self.samples.append((now, values))
        while len(self.samples) > 2 and self.samples[1][0] < now - keep:
            self.samples.popleft()

    def increase(self, key: str) -> float:
        if len(self.samples) < 2:
            return 0.0
        return self.samples[-1][1].get(key, 0.0) - self.samples[0][1].get(key, 0.0)

    def rate(self, key: str, span: float = 5.0) -> float:
        if len(self.samples) < 2:
            return 0.0
        last_t, last = self.samples[-1]
        first_t, first = self.samples[0]
        for t, values in reversed(self.samples):
            if last_t - t >= span:
                first_t, first = t, values
                break
        elapsed = last_t - first_t
        return 0.0 if elapsed <= 0 else (last.get(key, 0.0) - first.get(key, 0.0)) / elapsed


class HubSampler:
    """Per-second rates and the incidents (slow consumers, drops, errors) within the
    degraded window that ``/health`` and ``/metrics`` report."""

    def __init__(self, degraded_window: float) -> None:
        self._keep = max(degraded_window, 10.0)
        self._window = CounterWindow()

    def sample(self, now: float, hub: Hub, manager: ConnectionManager) -> None:
        values: dict[str, float] = {k: float(v) for k, v in hub.metrics().items()}
        counts = manager.metrics()
        values["client_messages"] = float(counts["client_messages"])
        values["errors"] = float(counts["errors"])
        self._window.add(now, values, self._keep)

    def rates(self) -> dict[str, float]:
        return {
            "published_per_second": round(self._window.rate("published"), 2),
            "delivered_per_second": round(self._window.rate("delivered"), 2),
            "messages_per_second": round(self._window.rate("client_messages"), 2),
        }

    def recent_incidents(self) -> dict[str, float]:
        return {
            "slow_consumer_disconnects": self._window.increase("slow_consumer_disconnects"),
            "dropped": self._window.increase("dropped"),
            "errors": self._window.increase("errors"),
        }
