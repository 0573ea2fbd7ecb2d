"""Kafka and Azure Event Hubs on the native core, without a web framework.

The native core does the work: one consumer per node fans records out into the hub
(``node`` mode), per-session consumer groups stay available for seed-000 compatibility
(``session`` mode), and a native producer publishes from Python so several nodes share
events. Poll threads are C++ only; Python configures, starts, stops and reads health.

:class:`KafkaClients` runs them on any :class:`sessionstream.Hub`::

    hub = sessionstream.Hub()
    kafka = KafkaClients(hub, KafkaSettings.from_env())
    kafka.start()
    ...
    kafka.stop()

In a FastAPI app, :class:`sessionstream.fastapi.kafka.KafkaStream` adds the lifespan,
the ``/kafka`` routes and the ``/health`` section to the same clients. Settings come from
code or from ``SESSIONSTREAM_KAFKA_*`` environment variables (:meth:`KafkaSettings.from_env`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sessionstream import _core
from sessionstream.payload import encode_payload
from sessionstream.session_ids import SessionIdDisplay, session_key

logger = logging.getLogger("sessionstream.kafka")

Mode = Literal["node", "session", "both"]
PayloadFormat = Literal["auto", "json", "text"]
StartPosition = Literal["latest", "earliest"]

ENV_PREFIX = "SESSIONSTREAM_KAFKA_"

KafkaError = _core.KafkaError
KafkaPoolFullError = _core.KafkaPoolFullError
KafkaAdmin = _core.KafkaAdmin
KafkaSessionPool = _core.KafkaSessionPool
KafkaSink = _core.KafkaSink
KafkaSource = _core.KafkaSource

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _property_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_properties(text: str) -> dict[str, str]:
    """``"a=1;b=2"`` (or newline-separated) into a dict; raises ``ValueError`` naming the
    entry that is not ``name=value``."""
    out: dict[str, str] = {}
    for raw in text.replace("\n", ";").split(";"):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"Kafka property {entry!r} is not name=value")
        out[name.strip()] = value.strip()
    return out


def parse_domains(text: str) -> dict[str, str]:
    """``"party,deposits:bank.deposits"`` into ``{"party": "party", "deposits":
    "bank.deposits"}``: a domain alone is its own topic."""
    out: dict[str, str] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        domain, _, topic = entry.partition(":")
        out[domain.strip()] = topic.strip() or domain.strip()
    return out


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """How :class:`KafkaClients` reach Kafka and what it streams.

    Every field can come from ``SESSIONSTREAM_KAFKA_<FIELD>`` (see :meth:`from_env`).
    """

    bootstrap_servers: str = ""
    """``host:port[,host:port]``; empty and no Event Hubs string means Kafka is off."""
    event_hubs_connection_string: str = field(default="", repr=False)
    """An Azure Event Hubs connection string: sets bootstrap, ``SASL_SSL``/``PLAIN`` with
    ``$ConnectionString``, keep-alive and Event Hubs' idle limits. Its ``EntityPath`` is
    the default topic."""
    properties: Mapping[str, str] = field(default_factory=dict)
    """Any librdkafka property, applied last (over the defaults and Event Hubs settings)."""
    mode: Mode = "node"
    """``node``: one consumer per process for ``topics``; ``session``: one consumer group per
    browser session and domain (seed 000); ``both``."""

    # node mode
    topics: tuple[str, ...] = ()
    channel: str = "{topic}"
    """Channel template: ``{topic}``, ``{partition}``, ``{key}``, ``{header:NAME}``,
    ``{json:PATH}``."""
    event_type: str = "message"
    """Event type template (same placeholders)."""
    payload: PayloadFormat = "auto"
    group_prefix: str = "sessionstream"
    node_id: str = ""
    """This process's part of its group id; empty: hostname-pid."""
    start: StartPosition = "latest"
    replay_max_events: int = 10_000
    """Per channel, how many events back a resume can seek in Kafka; further back is a gap."""
    replay_max_total_events: int = 1_000_000
    """Over all channels, how many event positions the replay index keeps (oldest go first)."""
    replay_timeout: float = 2.0
    ready_timeout: float = 10.0
    """Seconds the app's startup waits for partition assignment (0: do not wait)."""

    # session mode
    domains: Mapping[str, str] = field(default_factory=dict)
    """Allowed domains and their topics, e.g. ``{"party": "party"}``."""
    session_channel: str = "session:{session}"
    session_event_type: str = "{domain}"
    max_consumers: int = 100
    idle_timeout: float = 3600.0
    sweep_interval: float = 300.0
    delete_groups: bool = True

    # producer
    sink: bool = True
    """Start a producer for :meth:`KafkaClients.publish`."""
    log_interval: float = 1.0
    """Seconds between two reads of the native log notes."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "topics", tuple(self.topics))
        object.__setattr__(
            self, "properties", {str(k): _property_text(v) for k, v in self.properties.items()}
        )
        object.__setattr__(self, "domains", dict(self.domains))
        if self.mode not in ("node", "session", "both"):
            raise ValueError(f"KafkaSettings.mode={self.mode!r}: use 'node', 'session' or 'both'")
        if self.payload not in ("auto", "json", "text"):
            raise ValueError(
                f"KafkaSettings.payload={self.payload!r}: use 'auto', 'json' or 'text'"
            )
        if self.start not in ("latest", "earliest"):
            raise ValueError(f"KafkaSettings.start={self.start!r}: use 'latest' or 'earliest'")
        for name in ("replay_max_events", "replay_max_total_events", "max_consumers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"KafkaSettings.{name}={getattr(self, name)!r}: must be > 0")
        for name in ("replay_timeout", "idle_timeout", "sweep_interval", "log_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"KafkaSettings.{name}={getattr(self, name)!r}: must be > 0")
        if self.ready_timeout < 0:
            raise ValueError(f"KafkaSettings.ready_timeout={self.ready_timeout!r}: must be >= 0")
        if self.event_hubs_connection_string:
            # Fails early, with the reason, rather than at start.
            _core.parse_event_hubs_connection_string(self.event_hubs_connection_string)

    @property
    def configured(self) -> bool:
        return bool(self.bootstrap_servers or self.event_hubs_connection_string)

    @property
    def node_topics(self) -> tuple[str, ...]:
        if self.topics:
            return self.topics
        if self.event_hubs_connection_string:
            hub_name = _core.parse_event_hubs_connection_string(self.event_hubs_connection_string)[
                "entity_path"
            ]
            if hub_name:
                return (hub_name,)
        return ()

    def client_properties(self) -> dict[str, str]:
        """librdkafka properties shared by every client: Event Hubs settings (if any),
        ``bootstrap.servers``, then :attr:`properties`."""
        out: dict[str, str] = {}
        if self.event_hubs_connection_string:
            out.update(_core.event_hubs_properties(self.event_hubs_connection_string))
        if self.bootstrap_servers:
            out["bootstrap.servers"] = self.bootstrap_servers
        out.update(self.properties)
        return out

    def replace(self, **changes: Any) -> KafkaSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = ENV_PREFIX, **overrides: Any
    ) -> KafkaSettings:
        """Read ``SESSIONSTREAM_KAFKA_<FIELD>``; ``overrides`` win.

        ``TOPICS`` is comma-separated, ``DOMAINS`` is ``party,deposits:topic``,
        ``PROPERTIES`` is ``name=value;name=value``; booleans accept 1/0, true/false,
        yes/no, on/off.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = prefix + f.name.upper()
            if key not in env:
                continue
            raw = env[key].strip()
            try:
                values[f.name] = _parse_field(f.name, raw)
            except ValueError as exc:
                raise ValueError(f"{key}={env[key]!r}: {exc}") from None
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"KafkaSettings has no field(s) {sorted(unknown)}")
        values.update(overrides)
        return cls(**values)


_INT_FIELDS = {"replay_max_events", "replay_max_total_events", "max_consumers"}
_FLOAT_FIELDS = {
    "replay_timeout",
    "ready_timeout",
    "idle_timeout",
    "sweep_interval",
    "log_interval",
}
_BOOL_FIELDS = {"delete_groups", "sink"}


def _parse_field(name: str, raw: str) -> Any:
    if name == "topics":
        return tuple(t.strip() for t in raw.split(",") if t.strip())
    if name == "domains":
        return parse_domains(raw)
    if name == "properties":
        return parse_properties(raw)
    if name in _INT_FIELDS:
        return int(raw.replace("_", ""))
    if name in _FLOAT_FIELDS:
        return float(raw)
    if name in _BOOL_FIELDS:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
    return raw


class KafkaClients:
    """The Kafka clients of one native :class:`~sessionstream.Hub`: the node source, the
    session pool and the producer that :class:`KafkaSettings` asks for.

    :meth:`start` and :meth:`stop` block on the broker (group joins, LeaveGroup, flush):
    call them off an event loop. Native log notes go to the ``sessionstream.kafka``
    logger when :meth:`log_notes` is called and on :meth:`stop`.
    """

    def __init__(self, hub: _core.Hub, settings: KafkaSettings | None = None) -> None:
        self.hub = hub
        self.settings = settings if settings is not None else KafkaSettings.from_env()
        self.source: _core.KafkaSource | None = None
        self.pool: _core.KafkaSessionPool | None = None
        self.sink: _core.KafkaSink | None = None

    # -- lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return any(c is not None for c in (self.source, self.pool, self.sink))

    def start(self) -> None:
        """Create and start the configured clients; on an error, stop what started."""
        if self.running:
            return
        if not self.settings.configured:
            logger.info("Kafka not configured (no bootstrap servers); not started")
            return
        s = self.settings
        props = s.client_properties()
        try:
            if s.mode in ("node", "both"):
                topics = s.node_topics
                if not topics:
                    raise ValueError(
                        "KafkaSettings.topics is empty: node mode needs at least one topic"
                        " (SESSIONSTREAM_KAFKA_TOPICS=party,deposits)"
                    )
                self.source = _core.KafkaSource(
                    self.hub,
                    properties=props,
                    topics=list(topics),
                    channel=s.channel,
                    event_type=s.event_type,
                    payload=s.payload,
                    group_prefix=s.group_prefix,
                    node_id=s.node_id,
                    start=s.start,
                    replay_max_events=s.replay_max_events,
                    replay_max_total_events=s.replay_max_total_events,
                    replay_timeout=s.replay_timeout,
                )
                self.source.start()
            if s.mode in ("session", "both"):
                self.pool = _core.KafkaSessionPool(
                    self.hub,
                    properties=props,
                    domains=list(s.domains.items()),
                    channel=s.session_channel,
                    event_type=s.session_event_type,
                    payload=s.payload,
                    group_prefix=s.group_prefix,
                    start=s.start,
                    max_consumers=s.max_consumers,
                    idle_timeout=s.idle_timeout,
                    sweep_interval=s.sweep_interval,
                    delete_groups=s.delete_groups,
                )
                self.pool.start()
            if s.sink:
                self.sink = _core.KafkaSink(properties=props)
                self.sink.start()
        except BaseException:
            self.stop()
            raise
        logger.info(
            "Kafka started: mode=%s topics=%s group=%s",
            s.mode,
            ",".join(s.node_topics) or "-",
            self.source.group_id if self.source is not None else "-",
        )

    def wait_ready(self, timeout: float) -> bool:
        """Whether the node source got its partitions within ``timeout`` seconds (true
        when there is no node source)."""
        if self.source is None:
            return True
        ready = self.source.wait_ready(timeout)
        if not ready:
            logger.warning(
                "Kafka source not assigned after %.1f s; streaming starts when the broker"
                " answers (%s)",
                timeout,
                self.source.health()["reason"] or "no reason reported",
            )
        return bool(ready)

    def stop(self) -> None:
        """Stop every client: consumers leave their groups, the producer flushes."""
        source, pool, sink = self.source, self.pool, self.sink
        self.source = self.pool = self.sink = None
        if source is not None:
            source.stop()
        if pool is not None:
            pool.stop()
        if sink is not None:
            sink.stop(5.0)
        for client in (source, pool, sink):
            if client is not None:
                _log_notes(client)

    def log_notes(self) -> None:
        """Send what the native clients noted since the last call to the logger."""
        for client in (self.source, self.pool, self.sink):
            if client is not None:
                _log_notes(client)

    # -- producing ------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        partition: int = -1,
    ) -> None:
        """Queue a record for Kafka (delivery is reported in :meth:`health`).

        dict/list/JSON scalars are JSON-encoded; str and bytes are sent as they are.
        Every node's source (this one included) then streams it to its sessions. Raises
        :class:`KafkaError` when librdkafka's queue stays full for a second.
        """
        if self.sink is None:
            raise _core.ClosedError("the Kafka producer is not running (Kafka not configured?)")
        value, _ = encode_payload(data)
        self.sink.produce(
            topic, value, key=key, headers=list((headers or {}).items()), partition=partition
        )

    # -- session mode --------------------------------------------------------------

    def _require_pool(self) -> _core.KafkaSessionPool:
        if self.pool is None:
            raise _core.ClosedError(
                "Kafka session mode is not running (KafkaSettings.mode 'session' or 'both')"
            )
        return self.pool

    def open_session(self, session_id: str, domain: str) -> dict[str, Any]:
        """The consumer of ``(session_id, domain)``, created when absent."""
        return self._require_pool().open(session_id, domain)

    def close_session_domain(self, session_id: str, domain: str) -> bool:
        return self._require_pool().close(session_id, domain)

    def close_session(self, session_id: str) -> int:
        return self._require_pool().close_session(session_id)

    # -- health ------------------------------------------------------------------------

    def health(self, *, session_ids: SessionIdDisplay = "hash") -> dict[str, Any]:
        """Health of every Kafka client: ``status`` ``healthy``/``degraded``/``disabled``
        with ``reasons``, the node consumer (assignments, lag per partition), the session
        pool in seed 000's shape (sessions, domains, created, age) and the producer."""
        doc: dict[str, Any] = {"configured": self.settings.configured, "mode": self.settings.mode}
        reasons: list[str] = []
        if not self.settings.configured:
            doc.update(status="disabled", reasons=["Kafka is not configured"])
            return doc
        if not self.running:
            doc.update(status="stopped", reasons=["Kafka clients are not running"])
            return doc
        if self.source is not None:
            # Each client section names the Kafka mode it serves.
            source = {"mode": "node", **self.source.health()}
            doc["source"] = source
            if source["status"] != "healthy":
                reasons.append(f"kafka source: {source['reason']}")
        if self.pool is not None:
            pool = {"mode": "session", **self.pool.health()}
            now = time.time()
            sessions: dict[str, Any] = {}
            for consumer in pool.pop("consumers"):
                sid = consumer["session_id"]
                if session_ids == "none":
                    continue
                key = session_key(sid, session_ids)
                view = sessions.setdefault(
                    key, {"domains": [], "consumer_count": 0, "timestamps": {}}
                )
                view["domains"].append(consumer["domain"])
                view["consumer_count"] += 1
                view["timestamps"][consumer["domain"]] = {
                    "created": consumer["created"],
                    "age_seconds": round(max(0.0, now - consumer["created"]), 3),
                    "idle_seconds": round(max(0.0, now - consumer["last_active"]), 3),
                    "assigned": consumer["assigned"],
                    "group_id": consumer["group_id"] if session_ids == "full" else None,
                }
            pool["sessions"] = sessions
            doc["session_pool"] = pool
            if pool["status"] != "healthy":
                reasons.append(f"kafka session pool: {pool['reason']}")
        if self.sink is not None:
            sink = self.sink.health()
            doc["sink"] = sink
            if sink["status"] != "healthy":
                reasons.append(f"kafka sink: {sink['reason']}")
        doc["status"] = "degraded" if reasons else "healthy"
        doc["reasons"] = reasons
        return doc


def _log_notes(client: Any) -> None:
    for level, kind, message in client.take_log_notes():
        logger.log(_LEVELS.get(level, logging.INFO), "%s [%s]", message, kind)


__all__ = [
    "KafkaAdmin",
    "KafkaClients",
    "KafkaError",
    "KafkaPoolFullError",
    "KafkaSessionPool",
    "KafkaSettings",
    "KafkaSink",
    "KafkaSource",
    "parse_domains",
    "parse_properties",
]
