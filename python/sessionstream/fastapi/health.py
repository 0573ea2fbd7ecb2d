"""``GET /health`` (JSON, the shapes of seeds 000/002/004) and ``GET /metrics`` (Prometheus).

Health is ``healthy`` or ``degraded`` with the reasons why, ``shutting_down`` (HTTP 503)
while draining. Counts always cover every session and are shown to anyone. The
per-session view is shown only as ``health_sessions`` allows (by default to requests the
hub's ``health_authorize`` hook accepts), one page of at most ``health_max_sessions``
sessions at a time, with session ids as a digest unless configured otherwise, because a
session id is a bearer secret.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sessionstream.fastapi.errors import StreamHTTPError
from sessionstream.session_ids import session_key

if TYPE_CHECKING:
    from starlette.requests import Request

    from sessionstream.fastapi.contracts import HealthHost


@dataclass(frozen=True, slots=True)
class SessionPage:
    """Which sessions one ``/health`` response lists: ``limit`` after the id ``after``."""

    limit: int
    after: str = ""


class HealthCursors:
    """Opaque ``?after=`` cursors for a listing that shows digests instead of ids.

    The listing is ordered by session id, so its natural cursor is the last id listed,
    which a digest display must not reveal. Each page therefore hands out a random token
    standing for that id, kept in this process for the last ``capacity`` pages.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, str] = OrderedDict()

    def issue(self, session_id: str) -> str:
        token = "c:" + secrets.token_urlsafe(12)
        self._ids[token] = session_id
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return token

    def resolve(self, token: str) -> str | None:
        return self._ids.get(token)


def _positive_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise StreamHTTPError(
            400, "invalid_query", f"?{name}={raw[:32]!r} must be a positive integer"
        )
    return value


async def sessions_visible(hub: HealthHost, request: Request) -> bool:
    """Whether ``request`` may see per-session health detail (``health_sessions``, and
    under ``authorized`` the hub's ``health_authorize`` hook)."""
    cfg = hub.config
    if cfg.health_sessions == "never" or cfg.health_session_ids == "none":
        return False
    if cfg.health_sessions == "always":
        return True
    hook = hub.health_authorize
    if hook is None:
        return False
    allowed = hook(request)
    if inspect.isawaitable(allowed):
        allowed = await allowed
    return allowed is True


async def session_page(
    hub: HealthHost, request: Request, cursors: HealthCursors
) -> SessionPage | None:
    """The page of sessions ``request`` may see, or ``None`` when it sees counts only.

    Raises :class:`StreamHTTPError` (400) for a bad ``?limit=`` or ``?after=``.
    """
    cfg = hub.config
    if cfg.health_max_sessions == 0 or not await sessions_visible(hub, request):
        return None
    limit = min(_positive_query(request, "limit", cfg.health_max_sessions), cfg.health_max_sessions)
    after = request.query_params.get("after", "")
    if after and cfg.health_session_ids != "full":
        resolved = cursors.resolve(after)
        if resolved is None:
            raise StreamHTTPError(
                400,
                "invalid_cursor",
                f"?after={after[:32]!r} is not a cursor this server handed out (or it expired);"
                " start again without ?after=",
            )
        after = resolved
    return SessionPage(limit, after)


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        return None


def health_document(
    hub: HealthHost, page: SessionPage | None = None, cursors: HealthCursors | None = None
) -> tuple[int, dict[str, Any]]:
    """Return ``(http_status, document)``; the per-session listing only with a ``page``."""
    cfg = hub.config
    now = time.time()
    if hub.state != "running":
        return 503, {
            "status": "shutting_down" if hub.state == "draining" else "stopped",
            "reasons": [f"the stream hub is {hub.state}"],
            "service": cfg.service_name,
            "timestamp": now,
        }
    manager_metrics = hub.manager.metrics()
    hub_metrics = hub.native.metrics()
    active = int(manager_metrics["active_connections"])
    reasons: list[str] = []
    if active >= cfg.degraded_connection_ratio * cfg.max_connections:
        reasons.append(
            f"connections at {active}/{cfg.max_connections}"
            f" (>= {cfg.degraded_connection_ratio:.0%} of max_connections)"
        )
    incidents = hub.recent_incidents()
    window = f"in the last {cfg.degraded_window:.0f} s"
    if incidents["slow_consumer_disconnects"] > 0:
        reasons.append(
            f"{incidents['slow_consumer_disconnects']:.0f} slow-consumer disconnect(s) {window}"
        )
    if incidents["dropped"] > 0:
        reasons.append(f"{incidents['dropped']:.0f} event(s) dropped for slow clients {window}")
    if incidents["errors"] > 0:
        reasons.append(f"{incidents['errors']:.0f} error(s) {window}")

    sections: dict[str, Any] = {}
    for name, section in hub.health_sections().items():
        try:
            sections[name] = section()
        except Exception as exc:  # a broken section reports itself, never breaks /health
            sections[name] = {"status": "degraded", "reasons": [f"health check failed: {exc!r}"]}
        if sections[name].get("status") == "degraded":
            reasons.extend(f"{name}: {reason}" for reason in sections[name].get("reasons", []))

    uptime = float(manager_metrics["uptime_seconds"])
    session_count = hub.manager.session_count()
    listed: dict[str, Any] = {}
    views = [] if page is None else hub.manager.sessions(page.limit, page.after)
    if page is not None:
        for view in views:
            created = float(view["created"])  # type: ignore[arg-type]
            sid = str(view["session_id"])
            key = session_key(sid, cfg.health_session_ids)
            # The private channel names the session id: shown under the same key.
            channels = [
                "session:" + key if str(c) == "session:" + sid else str(c)
                for c in cast("list[object]", view["channels"])
            ]
            listed[key] = {
                "domains": [c for c in channels if not c.startswith("session:")],
                "channels": channels,
                "connection_count": int(view["connections"]),  # type: ignore[call-overload]
                # Which tab receives: under failover one per group is active, the
                # others wait on standby.
                "connections": [
                    {
                        "id": info["id"],
                        "group": info["group"],
                        "state": "standby" if info["standby"] else "active",
                    }
                    for info in hub.manager.connections_of(sid)
                ],
                "created": created,
                "age_seconds": round(max(0.0, now - created), 3),
            }
    rejections = {
        key.removeprefix("rejections_"): int(value)
        for key, value in manager_metrics.items()
        if key.startswith("rejections_")
    }
    try:
        tasks: int | None = len(asyncio.all_tasks())
    except RuntimeError:  # pragma: no cover - not on a loop
        tasks = None
    # Every open stream, SSE and WebSocket; client messages are those WebSocket clients sent.
    connections = {
        "active_connections": active,
        "unique_browser_sessions": int(manager_metrics["unique_browser_sessions"]),
        "processing_connections": int(manager_metrics["processing_connections"]),
        "pending_swaps": int(manager_metrics["pending_swaps"]),
        "standby_connections": int(manager_metrics["standby_connections"]),
        "opened_lifetime": int(manager_metrics["opened_lifetime"]),
        "errors": int(manager_metrics["errors"]),
        "client_messages": int(manager_metrics["client_messages"]),
        "client_messages_per_connection": round(
            float(manager_metrics["client_messages_per_connection"]), 3
        ),
    }
    document: dict[str, Any] = {
        "status": "degraded" if reasons else "healthy",
        "reasons": reasons,
        "service": cfg.service_name,
        "timestamp": now,
        "uptime_seconds": round(uptime, 3),
        "uptime_hours": round(uptime / 3600, 4),
        "connections": connections,
        # Seed 004's section, kept under its name: it counts SSE connections too, and its
        # total_messages are the client messages of "connections".
        "websocket_metrics": {
            "active_connections": active,
            "unique_browser_sessions": connections["unique_browser_sessions"],
            "processing_connections": connections["processing_connections"],
            "pending_swaps": connections["pending_swaps"],
            "standby_connections": connections["standby_connections"],
            "total_connections_lifetime": connections["opened_lifetime"],
            "total_errors": connections["errors"],
            "total_messages": connections["client_messages"],
            "avg_messages_per_connection": connections["client_messages_per_connection"],
        },
        "stream": {
            "active_connections": active,
            "max_connections": cfg.max_connections,
            "total_messages": int(hub_metrics.get("published", 0)),  # deprecated: published
            "channels": int(hub_metrics.get("channels", hub.native.channel_count())),
            **{k: int(v) for k, v in hub_metrics.items() if k != "channels"},
            **hub.rates(),
        },
        "delivery": hub.delivery_status(),
        "limits": {
            "max_connections": cfg.max_connections,
            "max_per_ip": cfg.max_per_ip,
            "max_per_session": cfg.max_per_session,
            "rejections": rejections,
        },
        "active_sessions": session_count,
        "total_connections": active,
        "sessions_listed": len(listed),
        "process": {"pid": os.getpid(), "open_fds": _open_fds(), "asyncio_tasks": tasks},
        **sections,
    }
    if page is not None:
        document["sessions"] = listed
        # A full page may have more behind it; a short one is the last.
        next_after: str | None = None
        if views and len(views) == page.limit:
            last = str(views[-1]["session_id"])
            if cfg.health_session_ids == "full":
                next_after = last
            else:
                if cursors is None:
                    raise ValueError("health_document: a page of hashed sessions needs cursors")
                next_after = cursors.issue(last)
        document["next_after"] = next_after
    return 200, document


_HUB_COUNTER_NAMES = {
    "published": "events_published",
    "delivered": "events_delivered",
    "dropped": "events_dropped",
    "slow_consumer_disconnects": "slow_consumer_disconnects",
}


class NativeCollector(Collector):
    """Reads the native counters at scrape time; nothing is counted in Python."""

    def __init__(self, hub: HealthHost) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        if hub.state == "stopped":
            return
        try:
            m = hub.manager.metrics()
            h = hub.native.metrics()
        except Exception:  # shut down between the check and the read
            return
        gauges = {
            "active_connections": "Open SSE and WebSocket connections",
            "unique_browser_sessions": "Browser sessions with at least one connection",
            "processing_connections": "Connections marked as processing",
            "pending_swaps": "Connections waiting for a processing connection to finish",
            "standby_connections": "Failover connections waiting to take over",
            "uptime_seconds": "Seconds since the hub started",
        }
        for key, doc in gauges.items():
            yield GaugeMetricFamily(f"sessionstream_{key}", doc, value=float(m[key]))
        counters = {
            "opened_lifetime": ("connections_opened", "Connections opened"),
            "errors": ("errors", "Errors recorded by the application"),
            "client_messages": ("messages", "Client messages handled"),
        }
        for key, (name, doc) in counters.items():
            yield CounterMetricFamily(f"sessionstream_{name}", doc, value=float(m[key]))
        rejected = CounterMetricFamily(
            "sessionstream_rejections", "Connections refused by a limit", labels=["kind"]
        )
        for key, value in m.items():
            if key.startswith("rejections_"):
                rejected.add_metric([key.removeprefix("rejections_")], float(value))
        yield rejected
        resumes = CounterMetricFamily(
            "sessionstream_resumes", "Resumes by outcome", labels=["outcome"]
        )
        gauge_keys = {"channels"}
        for key, value in h.items():
            if key.startswith("resumes_"):
                resumes.add_metric([key.removeprefix("resumes_")], float(value))
            elif key in gauge_keys:
                yield GaugeMetricFamily(
                    f"sessionstream_{key}", f"Native hub {key}", value=float(value)
                )
            else:
                name = _HUB_COUNTER_NAMES.get(key, f"hub_{key}")
                yield CounterMetricFamily(
                    f"sessionstream_{name}", f"Native hub counter {key}", value=float(value)
                )
        yield resumes
        by_mode = GaugeMetricFamily(
            "sessionstream_connections",
            "Open connections by delivery mode (native engine or Python) and transport",
            labels=["delivery", "transport"],
        )
        for mode, counts in hub.delivery_counts().items():
            for transport, count in counts.items():
                by_mode.add_metric([mode, transport], float(count))
        yield by_mode
        native = hub.native_delivery
        if native is not None:
            for key, value in native.metrics().items():
                if key.startswith("open_"):
                    continue
                yield CounterMetricFamily(
                    f"sessionstream_engine_{key}", f"Native engine counter {key}", value=value
                )
        rates = hub.rates()
        for key, value in rates.items():
            yield GaugeMetricFamily(
                f"sessionstream_{key}", f"Recent {key.replace('_', ' ')}", value=value
            )
        yield from _health_metrics(hub)


def _health_metrics(hub: HealthHost) -> Iterator[Metric]:
    """The verdict of ``/health`` and of its sections as series, so that alerts and
    dashboards need not poll the JSON. ``sessionstream_kafka_consumer_lag`` exists only
    while a Kafka node consumer is configured."""
    status, document = health_document(hub)
    if status != 200:
        return
    yield GaugeMetricFamily(
        "sessionstream_degraded",
        "1 while /health reports degraded, else 0",
        value=float(document["status"] == "degraded"),
    )
    components = GaugeMetricFamily(
        "sessionstream_component_degraded",
        "1 while a section of /health (redis, kafka) reports degraded, else 0",
        labels=["component"],
    )
    for name in hub.health_sections():
        section = document.get(name)
        degraded = isinstance(section, dict) and section.get("status") == "degraded"
        components.add_metric([name], float(degraded))
    yield components
    kafka = document.get("kafka")
    source = kafka.get("source") if isinstance(kafka, dict) else None
    if isinstance(source, dict):
        lag = GaugeMetricFamily(
            "sessionstream_kafka_consumer_lag",
            "Records between the node consumer's position and the high watermark",
            labels=["topic", "partition"],
        )
        for assignment in source.get("assignments", []):
            if assignment["lag"] >= 0:  # negative: not known yet (no watermark fetched)
                lag.add_metric(
                    [str(assignment["topic"]), str(assignment["partition"])],
                    float(assignment["lag"]),
                )
        yield lag


def make_registry(hub: HealthHost) -> CollectorRegistry:
    """A registry of this hub's metrics only (no process-global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NativeCollector(hub))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
