"""Configuration of a stream hub: one frozen dataclass, also readable from ``SESSIONSTREAM_*``.

Every field has a safe default. ``StreamConfig.from_env()`` reads each field from the
environment variable ``SESSIONSTREAM_<FIELD NAME IN UPPER CASE>`` (for example
``SESSIONSTREAM_MAX_CONNECTIONS=500``); keyword arguments given to ``from_env`` win over
the environment. Invalid values raise ``ValueError`` naming the field, the value and what
would be valid.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

Policy = Literal["all", "latest", "swap_after_processing", "failover"]
Overflow = Literal["disconnect", "drop_oldest"]
SessionIdDisplay = Literal["hash", "full", "none"]
HealthSessions = Literal["authorized", "always", "never"]
SameSite = Literal["lax", "strict", "none"]

ENV_PREFIX = "SESSIONSTREAM_"


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Settings of a :class:`sessionstream.fastapi.StreamHub` and its routes."""

    # Routes
    prefix: str = "/stream"
    """Path prefix of the stream routes (``/stream/sse``, ``/stream/ws``, ...)."""
    health_path: str | None = "/health"
    """Path of the JSON health endpoint; empty or ``None`` disables it."""
    metrics_path: str | None = "/metrics"
    """Path of the Prometheus endpoint; empty or ``None`` disables it."""
    service_name: str = "sessionstream"
    """Reported as ``service`` in the health document."""

    # Limits (seed 002): server full gives 503 + Retry-After, per IP / session 429.
    max_connections: int = 10_000
    max_per_ip: int = 1_000
    max_per_session: int = 32
    retry_after_seconds: int = 5
    """``Retry-After`` sent with 503/429 rejections, and the back-off hint in 1013 closes."""

    # Tabs of one browser session (seed 004)
    policy: Policy = "all"
    """Default connection policy of a session: ``all``, ``latest``, ``swap_after_processing``
    or ``failover`` (one tab receives, later ones wait on standby and take over)."""
    sse_policy: Policy | None = None
    """Policy of SSE connections; ``None`` uses ``policy``."""
    ws_policy: Policy | None = None
    """Policy of WebSocket connections; ``None`` uses ``policy``."""

    # History and mailboxes
    history_max_events: int = 1024
    """Events kept per channel for resume."""
    history_max_age: float = 300.0
    """Seconds an event stays resumable."""
    max_event_bytes: int = 1_048_576
    max_channels_per_connection: int = 256
    """Channels one connection may subscribe to; a subscribe past it is refused."""
    mailbox_events: int = 1024
    """Pending events per connection before the overflow policy applies."""
    mailbox_bytes: int = 1_048_576
    overflow: Overflow = "disconnect"
    max_batch_bytes: int = 262_144
    """Upper bound of one send: frames are taken from a mailbox in batches of about this size."""

    # Liveness
    heartbeat_interval: float = 15.0
    """Seconds between SSE comment heartbeats on an idle stream."""
    retry_ms: int = 3000
    """SSE ``retry:`` field: how long a browser waits before reconnecting by itself."""
    send_timeout: float = 10.0
    """A send to a client that does not complete within this many seconds closes the client."""
    shutdown_timeout: float = 5.0
    """Seconds given to clients to receive their shutdown frame before they are cut off."""
    drain_on_signal: bool = True
    """Start draining streams on SIGINT/SIGTERM, before the server waits for open requests."""

    # Delivery
    native_delivery: bool = True
    """Hand stream connections to the native engine when the server offers the
    ``sessionstream.handoff`` extension (``sessionstream serve``); ``False`` keeps every
    stream on the Python delivery path."""
    native_threads: int = 1
    """Threads of the native engine; each owns the connections handed to it."""
    ws_idle_timeout: float = 60.0
    """Natively delivered WebSockets: a peer silent this long is closed; pings go out at
    half of it."""

    # Redis: several workers or nodes behave as one
    # Not in repr: the URL may carry a password.
    redis_url: str | None = dataclasses.field(default=None, repr=False)
    """``redis://[[user]:password@]host[:port][/db]``. ``None`` keeps everything in this
    process (the embedded default). Set, every worker and node shares events, resume and
    sessions through Redis; see ``redis_streams``, ``redis_subscribe`` and
    ``redis_session_store``."""
    redis_key_prefix: str = "sessionstream"
    """Prefix of every Redis key this hub uses; nodes that share it form one cluster."""
    redis_streams: bool = True
    """Publish through one Redis stream shared by every node: each event gets one id that
    means the same everywhere, so a browser resumes exactly on whichever node it reaches.
    ``False`` keeps publishes and ids local to the process (pub/sub input only)."""
    redis_stream_max_len: int = 10_000
    """Events the shared stream keeps, all channels together: how far back a resume on
    another node (or after this node's own history) reaches before it is a gap."""
    redis_subscribe: str = ""
    """Comma-separated Redis pub/sub channels or patterns (``crawl:*:progress``) fed into
    the hub over one connection per node. Pub/sub keeps no history: with
    ``redis_streams`` these events are delivered live without an id (not resumable);
    without it they get this process's ids (resumable on this node only)."""
    redis_channel: str = "{channel}"
    """Hub channel of a Redis pub/sub message: ``{channel}`` is its Redis channel name."""
    redis_event_type: str = "message"
    """Event type given to Redis pub/sub messages."""
    redis_payload: Literal["auto", "json", "text"] = "auto"
    """Redis pub/sub payloads: JSON when they parse (``auto``), JSON only, or text."""
    redis_session_store: bool = True
    """Keep session values and conversation history in Redis, shared by every node."""
    redis_connect_timeout: float = 2.0

    # WebSocket protocol
    ws_max_message_bytes: int = 65_536
    """Largest client message accepted; larger ones get an error frame."""
    ws_max_concurrent_handlers: int = 4
    """Application messages of one connection handled at the same time; more get ``busy``."""
    ws_messages_per_second: float = 20.0
    """Sustained rate of client messages per connection; faster ones get ``rate_limited``."""
    ws_message_burst: int = 40
    """Client messages a connection may send at once before the rate applies."""

    ws_allowed_origins: str = ""
    """Comma-separated origins (``https://app.example``) whose pages may open WebSocket
    streams besides the server's own (the ``Host`` it was reached by); ``*`` allows any.
    Handshakes from other origins are refused with 403. Behind a proxy that rewrites
    ``Host``, list the public origin here."""
    cors_allowed_origins: str = ""
    """Comma-separated origins (``https://app.example``) whose pages may read SSE streams
    and call the session routes cross-origin, with credentials (CORS with
    ``Access-Control-Allow-Credentials``). Empty (the default): no CORS headers, and a
    request whose ``Origin`` is neither the server's own nor listed is refused with 403.
    ``*`` is not accepted here: credentialed CORS needs the origin named."""

    # Rate limits (token buckets): new connections per IP and per session, and WebSocket
    # client messages per session. A rate of 0 turns that limit off.
    connect_rate_per_ip: float = 100.0
    """New SSE / WebSocket connections per second from one client address."""
    connect_burst_per_ip: int = 500
    """New connections one address may open at once before ``connect_rate_per_ip`` applies."""
    connect_rate_per_session: float = 20.0
    """New SSE / WebSocket connections per second of one browser session."""
    connect_burst_per_session: int = 60
    ws_session_messages_per_second: float = 50.0
    """Client WebSocket messages per second of one session, all its tabs together (on top
    of ``ws_messages_per_second`` per connection)."""
    ws_session_message_burst: int = 100
    rate_limit_max_keys: int = 100_000
    """Token buckets kept per limit (addresses, sessions); idle ones are dropped first, so
    a flood from many addresses cannot grow memory past this."""

    # Browser session ids
    session_header: str = "X-Session-ID"
    session_query: str = "session_id"
    session_query_enabled: bool = False
    """Accept the session id from the ``?session_id=`` query parameter (legacy clients).
    Off by default: a URL is written to access logs (the server's and every proxy's) and
    the id is a bearer secret, so a query id is refused with 400 / close 1008. Browsers
    send the HttpOnly cookie by themselves; other clients send ``X-Session-ID``."""
    session_cookie: str = "sessionstream_sid"
    cookie_max_age: int = 30 * 24 * 3600
    cookie_secure: bool = False
    cookie_samesite: SameSite = "lax"
    session_idle_timeout: float = 3600.0
    """Seconds after which an idle session's stored values and history are dropped."""
    session_sweep_interval: float = 300.0
    session_max_history: int = 1000

    # Logs
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON line per connection event (opened, closed, refused, ...) on the
    ``sessionstream.connections`` logger, sessions as digests; see
    :mod:`sessionstream.fastapi.logs`."""

    # Health
    health_session_ids: SessionIdDisplay = "hash"
    """How session ids appear in ``/health``: ``hash`` (a digest), ``full`` or ``none``."""
    health_max_sessions: int = 100
    """Sessions listed per ``/health`` page (``?limit=`` may ask for fewer; ``?after=``
    continues); the counts always cover every session."""
    health_sessions: HealthSessions = "authorized"
    """Who sees the per-session listing of ``/health``: ``authorized`` (only requests the
    hub's ``health_authorize`` hook accepts; nobody without a hook), ``always`` (every
    caller) or ``never``. The counts are always shown."""
    degraded_connection_ratio: float = 0.9
    """Health turns ``degraded`` when connections reach this share of ``max_connections``."""
    degraded_window: float = 60.0
    """Seconds during which a slow-consumer disconnect or error keeps health ``degraded``."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check(field.name, getattr(self, field.name), _field_type(field.name))
        for name in ("prefix",):
            value = getattr(self, name)
            if value and (not value.startswith("/") or value.endswith("/")):
                raise ValueError(
                    f"StreamConfig.{name}={value!r}: must start with '/' and not end with '/'"
                    " (for example '/stream')"
                )
        for name in ("health_path", "metrics_path"):
            value = getattr(self, name)
            if value and not value.startswith("/"):
                raise ValueError(f"StreamConfig.{name}={value!r}: must start with '/'")
        positive = (
            "max_connections",
            "max_per_ip",
            "max_per_session",
            "history_max_events",
            "max_event_bytes",
            "max_channels_per_connection",
            "mailbox_events",
            "mailbox_bytes",
            "max_batch_bytes",
            "ws_max_message_bytes",
            "ws_max_concurrent_handlers",
            "native_threads",
            "ws_idle_timeout",
            "ws_messages_per_second",
            "ws_message_burst",
            "session_max_history",
            "heartbeat_interval",
            "send_timeout",
            "history_max_age",
            "session_idle_timeout",
            "session_sweep_interval",
            "redis_stream_max_len",
            "redis_connect_timeout",
            "rate_limit_max_keys",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"StreamConfig.{name}={getattr(self, name)!r}: must be greater than 0"
                )
        non_negative = (
            "retry_after_seconds",
            "retry_ms",
            "shutdown_timeout",
            "cookie_max_age",
            "health_max_sessions",
            "degraded_window",
            "connect_rate_per_ip",
            "connect_burst_per_ip",
            "connect_rate_per_session",
            "connect_burst_per_session",
            "ws_session_messages_per_second",
            "ws_session_message_burst",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"StreamConfig.{name}={getattr(self, name)!r}: must be 0 or more")
        if not 0 < self.degraded_connection_ratio <= 1:
            raise ValueError(
                f"StreamConfig.degraded_connection_ratio={self.degraded_connection_ratio!r}:"
                " must be in (0, 1]"
            )
        if not self.session_header or not self.session_query or not self.session_cookie:
            raise ValueError(
                "StreamConfig: session_header, session_query and session_cookie must be set"
            )

        for rate, burst in (
            ("connect_rate_per_ip", "connect_burst_per_ip"),
            ("connect_rate_per_session", "connect_burst_per_session"),
            ("ws_session_messages_per_second", "ws_session_message_burst"),
        ):
            if getattr(self, rate) > 0 and getattr(self, burst) < 1:
                raise ValueError(
                    f"StreamConfig.{burst}={getattr(self, burst)!r}: must be at least 1 while"
                    f" {rate} is set (0 turns the limit off)"
                )
        if "*" in (o.strip() for o in self.cors_allowed_origins.split(",")):
            raise ValueError(
                f"StreamConfig.cors_allowed_origins={self.cors_allowed_origins!r}: '*' cannot be"
                " used with credentials; list the origins (https://app.example, ...)"
            )

        if self.redis_url is not None:
            from sessionstream._core import validate_redis_url

            try:
                validate_redis_url(self.redis_url)
            except ValueError as exc:
                raise ValueError(f"StreamConfig.redis_url: {exc}") from None
        if not self.redis_key_prefix or any(c.isspace() for c in self.redis_key_prefix):
            raise ValueError(
                f"StreamConfig.redis_key_prefix={self.redis_key_prefix!r}:"
                " must be non-empty without spaces"
            )

    @property
    def redis_patterns(self) -> tuple[str, ...]:
        """``redis_subscribe`` as a tuple of channels/patterns."""
        return tuple(p.strip() for p in self.redis_subscribe.split(",") if p.strip())

    @property
    def effective_sse_policy(self) -> Policy:
        return self.sse_policy or self.policy

    @property
    def effective_ws_policy(self) -> Policy:
        return self.ws_policy or self.policy

    def replace(self, **changes: Any) -> StreamConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        prefix: str = ENV_PREFIX,
        **overrides: Any,
    ) -> StreamConfig:
        """Read fields from ``SESSIONSTREAM_<FIELD>`` variables; ``overrides`` win.

        Booleans accept ``1/0``, ``true/false``, ``yes/no``, ``on/off``; an empty value of an
        optional field (``SESSIONSTREAM_METRICS_PATH=``) means ``None``.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            key = prefix + field.name.upper()
            if key in env:
                values[field.name] = _parse(field.name, env[key], _field_type(field.name), key)
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"StreamConfig has no field(s) {sorted(unknown)}")
        values.update(overrides)
        return cls(**values)


_TYPE_CACHE: dict[str, Any] = {}


def _field_type(name: str) -> Any:
    if not _TYPE_CACHE:
        _TYPE_CACHE.update(typing.get_type_hints(StreamConfig))
    return _TYPE_CACHE[name]


def _split_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _check(name: str, value: Any, tp: Any) -> None:
    base, optional = _split_optional(tp)
    if value is None:
        if optional:
            return
        raise ValueError(f"StreamConfig.{name}: must not be None")
    if typing.get_origin(base) is Literal:
        allowed = get_args(base)
        if value not in allowed:
            raise ValueError(
                f"StreamConfig.{name}={value!r}: must be one of {', '.join(map(repr, allowed))}"
            )
        return
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, base)
    if not ok:
        raise ValueError(
            f"StreamConfig.{name}={value!r}: must be {getattr(base, '__name__', base)}"
        )


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(name: str, raw: str, tp: Any, key: str) -> Any:
    base, optional = _split_optional(tp)
    text = raw.strip()
    if optional and text == "":
        return None
    try:
        if base is bool:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
        if base is int:
            return int(text.replace("_", ""))
        if base is float:
            return float(text)
        return text
    except ValueError as exc:
        raise ValueError(f"{key}={raw!r}: {exc}") from None
