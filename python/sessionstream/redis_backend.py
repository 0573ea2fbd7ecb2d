"""Redis for a stream hub: what several workers and nodes share, built from a
:class:`~sessionstream.config.StreamConfig`.

Three native parts, each optional, each with one or two Redis connections per process:

- :class:`~sessionstream.RedisStreamBus` (``redis_streams``): every publish goes into one
  Redis stream and comes back to every node's hub under the same id, so a browser resumes
  exactly on whichever node it reaches.
- :class:`~sessionstream.RedisSource` (``redis_subscribe``): Redis pub/sub channels and
  patterns fed into the hub over one subscription connection, never one per browser.
- :class:`~sessionstream.RedisSessionStore` (``redis_session_store``): session values and
  conversation history that every node reads and writes.

Redis down at start is not an error: the parts connect in the background, retry with
backoff, and report ``degraded`` with the reason until they are connected.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from sessionstream import _core
from sessionstream.config import StreamConfig

logger = logging.getLogger("sessionstream.redis")

_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


class RedisBackend:
    """The Redis parts a config asks for, around one native :class:`~sessionstream.Hub`.

    Create the hub with :func:`hub_sequencing` so its ids come from the bus.
    """

    def __init__(
        self, config: StreamConfig, hub: _core.Hub, store: _core.SessionStore | None = None
    ) -> None:
        if config.redis_url is None:
            raise ValueError("RedisBackend needs StreamConfig.redis_url")
        self.config = config
        self.store = store if isinstance(store, _core.RedisSessionStore) else None
        self.bus: _core.RedisStreamBus | None = None
        self.source: _core.RedisSource | None = None
        if config.redis_streams:
            self.bus = _core.RedisStreamBus(
                hub,
                config.redis_url,
                key_prefix=config.redis_key_prefix,
                max_len=config.redis_stream_max_len,
                connect_timeout=config.redis_connect_timeout,
            )
        if config.redis_patterns:
            self.source = _core.RedisSource(
                hub,
                config.redis_url,
                list(config.redis_patterns),
                channel=config.redis_channel,
                event_type=config.redis_event_type,
                payload=config.redis_payload,
                connect_timeout=config.redis_connect_timeout,
            )

    def describe(self) -> str:
        """One line for the start log (the URL without its password)."""
        url = _core.validate_redis_url(self.config.redis_url or "")
        parts = []
        if self.bus is not None:
            parts.append(f"events through the Redis stream {self.config.redis_key_prefix}:events")
        if self.source is not None:
            parts.append("pub/sub " + ",".join(self.config.redis_patterns))
        if self.store is not None:
            parts.append("sessions in Redis")
        return f"Redis {url}: " + ", ".join(parts or ["configured"])

    def start(self) -> None:
        """Start the background threads; returns at once, connected or not."""
        for part in self._parts():
            part.start()

    def stop(self) -> None:
        for part in self._parts():
            part.stop()

    def wait_ready(self, timeout: float) -> bool:
        """True once the bus has the cluster's id space and the source is subscribed."""
        ready = True
        if self.bus is not None:
            ready = self.bus.wait_ready(timeout) and ready
        if self.source is not None:
            ready = self.source.wait_connected(timeout) and ready
        return ready

    def publish(self, channel: str, data: str | bytes, event: str, *, json: bool) -> str:
        """Publish through the shared stream; raises ``UnavailableError`` when Redis is
        unreachable (nothing was published: the caller decides whether to retry)."""
        if self.bus is None:
            raise RuntimeError("publishing through Redis needs StreamConfig.redis_streams")
        return self.bus.publish(channel, data, event, json=json)

    def log_notes(self) -> None:
        """Log what the native parts noted (bad input, reconnects), once per kind."""
        for part in self._parts():
            for level, kind, message in part.take_log_notes():
                logger.log(_LEVELS.get(level, logging.INFO), "%s [%s]", message, kind)

    def health(self) -> dict[str, Any]:
        """The ``redis`` section of ``/health``: ``degraded`` with reasons while a part
        is not connected."""
        section: dict[str, Any] = {"status": "healthy", "reasons": []}
        parts = (("stream", self.bus), ("pubsub", self.source), ("sessions", self.store))
        for name, part in parts:
            if part is None:
                continue
            state = part.health()
            section[name] = state
            if state.get("status", "healthy") != "healthy":
                section["reasons"].append(f"{name}: {state.get('reason') or state.get('status')}")
        if section["reasons"]:
            section["status"] = "degraded"
        return section

    def _parts(self) -> list[Any]:
        return [p for p in (self.bus, self.source) if p is not None]


def hub_sequencing(config: StreamConfig) -> Literal["local", "external"]:
    """``external`` when the Redis stream numbers events for every node."""
    return "external" if config.redis_url is not None and config.redis_streams else "local"


def session_store(config: StreamConfig) -> _core.SessionStore:
    """The session store a config asks for: Redis (shared) or in memory."""
    if config.redis_url is not None and config.redis_session_store:
        return _core.RedisSessionStore(
            config.redis_url,
            key_prefix=config.redis_key_prefix,
            idle_timeout=config.session_idle_timeout,
            max_history_entries=config.session_max_history,
            connect_timeout=config.redis_connect_timeout,
        )
    return _core.MemorySessionStore(
        idle_timeout=config.session_idle_timeout,
        sweep_interval=config.session_sweep_interval,
        max_history_entries=config.session_max_history,
    )
