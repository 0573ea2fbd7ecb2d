"""Type stubs for the native core (``sessionstream._core``)."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

Framing = Literal["sse", "websocket"]
Overflow = Literal["disconnect", "drop_oldest"]
Policy = Literal["all", "latest", "swap_after_processing", "failover"]
ResumeOutcome = Literal["live", "exact", "gap", "reset"]
LimitKind = Literal["server_full", "per_ip", "per_session"]

class SessionStreamError(Exception):
    """Base class of every error raised by sessionstream."""

class InvalidArgumentError(SessionStreamError, ValueError):
    """A value is outside its valid range; the message names it and what is valid."""

class InvalidUtf8Error(InvalidArgumentError):
    """Text that must be UTF-8 (event data, event type) is not; frames are UTF-8 text."""

    field: Literal["event", "data"]
    offset: int
    """Byte offset of the first invalid sequence."""

class TooManyChannelsError(InvalidArgumentError):
    """A subscribe would put a connection over its channel cap; nothing was changed."""

    limit: int

class PayloadTooLargeError(SessionStreamError, ValueError):
    """An event or stored value is larger than the configured maximum."""

class ClosedError(SessionStreamError, RuntimeError):
    """The hub, manager or connection was closed."""

class LimitExceededError(SessionStreamError):
    """A connection cap refused a new connection."""

    kind: LimitKind
    limit: int

class UnavailableError(SessionStreamError, ConnectionError):
    """A shared service the call needs (Redis) cannot be reached; nothing was done, retry later."""

class Notifier:
    """One eventfd that wakes an event loop when connections have frames ready."""

    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def take_ready(self) -> list[int]:
        """Clear the eventfd; return ids of connections that became ready (0: lifecycle)."""

class LifecycleEvent:
    kind: Literal[
        "connected",
        "disconnected",
        "swapped",
        "replaced",
        "slow_consumer",
        "rejected",
        "standby",
        "promoted",
    ]
    connection_id: int
    session_id: str
    other_connection_id: int
    detail: str

class Hub:
    """Channels, history rings and fan-out. Every method is thread-safe and releases the GIL."""

    def __init__(
        self,
        *,
        history_max_events: int = 1024,
        history_max_age: float = 300.0,
        max_event_bytes: int = 1048576,
        epoch: int = 0,
        lifecycle_capacity: int = 4096,
        sequencing: Literal["local", "external"] = "local",
        max_channels_per_connection: int = 256,
    ) -> None:
        """``sequencing="external"``: a :class:`RedisStreamBus` numbers events for every node;
        :meth:`publish` then delivers transient events (no id, no history)."""
    @property
    def epoch(self) -> int: ...
    @property
    def sequencing(self) -> Literal["local", "external"]: ...
    @property
    def head_id(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def publish(
        self, channel: str, data: bytes | str, event: str = "message", *, json: bool = False
    ) -> str:
        """Publish to a channel and return the event id.

        ``json=True`` embeds data as JSON in WebSocket frames. Data and event type must be
        valid UTF-8 (``InvalidUtf8Error`` names the byte offset otherwise).
        """
    def subscriber_count(self, channel: str) -> int: ...
    def channel_count(self) -> int: ...
    def sweep(self) -> int: ...
    def close(self) -> None: ...
    def metrics(self) -> dict[str, int]: ...
    def set_lifecycle_notifier(self, notifier: Notifier) -> None:
        """Lifecycle events mark token 0 ready on this notifier."""
    def take_lifecycle(self) -> list[LifecycleEvent]: ...

class Connection:
    """One client connection: its mailbox, channels and slot in its session."""

    @property
    def id(self) -> int: ...
    @property
    def session_id(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def resume(self) -> ResumeOutcome: ...
    @property
    def closed(self) -> bool:
        """True once the connection was released (by close())."""
    @property
    def pending_events(self) -> int: ...
    @property
    def channels(self) -> list[str]: ...
    def take(self, max_bytes: int = 262144) -> tuple[bytes, bool, str]:
        """Pending frames as one buffer, and (closed, reason) once the mailbox is closed and empty.

        SSE: frames back to back. WebSocket: one JSON array of event/control objects.
        """
    def subscribe(
        self, channels: Sequence[str], last_event_id: str | None = None
    ) -> ResumeOutcome: ...
    def unsubscribe(self, channel: str) -> None: ...
    def close(self, reason: str = "client_gone") -> None: ...

class ConnectionManager:
    """Sessions, connections (tabs), limits, processing/swap state and counts."""

    def __init__(
        self,
        hub: Hub,
        *,
        max_connections: int = 10000,
        max_per_ip: int = 1000,
        max_per_session: int = 32,
        policy: Policy = "all",
    ) -> None: ...
    def open(
        self,
        session_id: str,
        *,
        notifier: Notifier,
        ip: str = "",
        channels: Sequence[str] = (),
        last_event_id: str | None = None,
        framing: Framing = "sse",
        overflow: Overflow = "disconnect",
        mailbox_events: int = 1024,
        mailbox_bytes: int = 1048576,
        policy: Policy | None = None,
        group: str = "",
    ) -> Connection:
        """Register a connection; ``latest``/``swap_after_processing``/``failover`` act within
        one group."""
    def mark_processing(self, connection_id: int) -> None: ...
    def unmark_processing(self, connection_id: int) -> None: ...
    def is_processing(self, connection_id: int) -> bool: ...
    def send_personal(
        self, session_id: str, data: bytes | str, event: str = "message", *, json: bool = False
    ) -> str: ...
    def disconnect_channel(self, session_id: str, channel: str) -> int: ...
    def close_session(self, session_id: str, reason: str = "session_cleanup") -> int: ...
    def close_connection(
        self, session_id: str, connection_id: int, reason: str = "client_gone"
    ) -> bool: ...
    def record_client_message(self) -> None: ...
    def record_error(self) -> None: ...
    def metrics(self) -> dict[str, float]: ...
    def session(self, session_id: str) -> dict[str, object] | None:
        """One session's ``{session_id, channels, connections, created (unix seconds)}``,
        ``None`` when it has no connection. A lookup by id, never a scan."""
    def sessions(self, limit: int = 100, after: str = "") -> list[dict[str, object]]:
        """At most ``limit`` session views (as :meth:`session`) whose ids sort after
        ``after``, in id order: pass the last id of a page to get the next one."""
    def session_count(self) -> int:
        """Sessions with at least one connection."""
    def connections_of(self, session_id: str) -> list[dict[str, object]]: ...
    def shutdown(self) -> None: ...

class SessionStore:
    """Per-session key/value and conversation history with an idle TTL: the interface of
    :class:`MemorySessionStore` (one process, a native sweeper) and
    :class:`RedisSessionStore` (shared by every node).

    Constructing ``SessionStore`` itself is deprecated (a ``DeprecationWarning``); it makes
    a :class:`MemorySessionStore`-backed store."""

    def __init__(
        self,
        *,
        idle_timeout: float = 3600.0,
        sweep_interval: float = 300.0,
        max_history_entries: int = 1000,
        max_value_bytes: int = 1048576,
    ) -> None: ...
    def set(self, session_id: str, key: str, value: str) -> None: ...
    def get(self, session_id: str, key: str) -> str | None: ...
    def delete(self, session_id: str, key: str) -> bool: ...
    def keys(self, session_id: str) -> list[str]: ...
    def append_history(self, session_id: str, entry: str) -> int: ...
    def history(self, session_id: str, limit: int = 100) -> list[str]: ...
    def touch(self, session_id: str) -> None: ...
    def erase_session(self, session_id: str) -> bool: ...
    def __contains__(self, session_id: str) -> bool: ...
    def __len__(self) -> int: ...
    def sweep(self) -> int: ...

class MemorySessionStore(SessionStore):
    """The in-memory store of one process; a native thread sweeps idle sessions."""

    def __init__(
        self,
        *,
        idle_timeout: float = 3600.0,
        sweep_interval: float = 300.0,
        max_history_entries: int = 1000,
        max_value_bytes: int = 1048576,
    ) -> None: ...

def is_valid_session_id(session_id: str) -> bool: ...
def validate_session_id(session_id: str) -> None: ...
def generate_session_id() -> str: ...
def private_channel(session_id: str) -> str: ...

REPLACED_EVENT_ID: str
"""SSE id of a replaced stream's close frame; a request resuming from it gets 204."""

def is_foreign_private_channel(channel: str, session_id: str) -> bool: ...

# -- Native delivery engine --------------------------------------------------------------

InboundKind = Literal["message", "closed"]

class Engine:
    """Native delivery of adopted SSE and WebSocket connections on its own threads.

    After adoption the engine alone writes frames, reads client messages, sends heartbeats and
    pings, detects disconnects and closes. Every method is thread-safe and releases the GIL
    while it may block. Call ``stop()`` before the ConnectionManager and Hub of the adopted
    connections go away.
    """

    INBOUND_TOKEN: int
    """Marked on ``host_notifier`` when the inbound queue goes from empty to non-empty."""

    def __init__(
        self,
        host_notifier: Notifier | None,
        *,
        threads: int = 1,
        heartbeat_interval: float = 15.0,
        send_timeout: float = 10.0,
        max_batch_bytes: int = 262144,
        shutdown_retry_ms: int = 5000,
        ws_max_message_bytes: int = 65536,
        ws_messages_per_second: float = 20.0,
        ws_message_burst: int = 40,
        ws_idle_timeout: float = 60.0,
        outbox_max_frames: int = 256,
    ) -> None: ...
    def next_notifier(self) -> Notifier:
        """The notifier to open a connection with (``ConnectionManager.open(notifier=...)``)
        when it will be adopted; round robin over the engine threads."""
    def adopt_sse(
        self,
        fd: int,
        connection: Connection,
        *,
        chunked: bool,
        initial: bytes,
        buffered: bytes = b"",
    ) -> None:
        """Take over an SSE response whose head was sent. Owns ``fd`` in every case (closes it on
        error). ``initial`` is body bytes written first; the engine adds the chunk framing when
        ``chunked``. Raises ``InvalidArgumentError`` (not a TCP socket, connection not opened with
        ``next_notifier()``) or ``ClosedError`` after ``begin_shutdown()`` (the connection is then
        closed with reason ``shutdown``)."""
    def adopt_websocket(
        self,
        fd: int,
        connection: Connection,
        *,
        request: bytes,
        headers: list[tuple[str, str]] = ...,
        welcome: str = "",
    ) -> None:
        """Take over a WebSocket before its handshake: the engine writes the 101 for ``request``
        (the raw upgrade request followed by any bytes read after it) with ``headers`` added,
        then ``welcome`` as the first text frame. Same ownership and errors as ``adopt_sse``."""
    def send_text(self, connection_id: int, text: str) -> bool:
        """A direct text frame to an adopted WebSocket, sent before its mailbox frames. False when
        unknown or closed; an outbox overflow closes the connection as ``slow_consumer``."""
    def take_inbound(self, max: int = 4096) -> list[tuple[int, InboundKind, str]]:
        """``(connection_id, "message", text)`` and ``(connection_id, "closed", reason)`` in arrival
        order. Every adopted WebSocket yields exactly one ``closed`` entry."""
    def begin_shutdown(self) -> None:
        """Refuse further adoptions; open connections run on until closed."""
    def wait_idle(self, timeout: float) -> bool:
        """True once no adopted connection is open; False after ``timeout`` seconds."""
    def stop(self) -> None:
        """Close what is left (reason ``shutdown``, sockets closed at once) and join the threads.
        Idempotent."""
    def metrics(self) -> dict[str, int]:
        """adopted_sse, adopted_websocket, open_sse, open_websocket, writes, bytes_written,
        events_written, heartbeats, send_timeouts, ws_messages_in, ws_rate_limited,
        ws_oversized, inbound_dropped, closed_total."""

# -- Kafka / Azure Event Hubs ------------------------------------------------------------

HAS_KAFKA: bool
"""False when built without librdkafka: the Kafka names exist but raise when used."""
HAS_REDIS: bool
"""False when built without hiredis: the Redis names exist but raise when used."""

Properties = Mapping[str, str | int | float | bool] | Iterable[tuple[str, str | int | float | bool]]
PayloadFormat = Literal["auto", "json", "text"]
StartPosition = Literal["latest", "earliest"]

class KafkaError(SessionStreamError):
    """A Kafka client call failed; ``code`` is librdkafka's error name (e.g. ``_TRANSPORT``)."""

    code: str

class KafkaPoolFullError(KafkaError):
    """The session consumer pool is at ``max_consumers``."""

    limit: int

def librdkafka_version() -> str: ...
def kafka_consumer_defaults() -> dict[str, str]:
    """Seed-000 consumer settings plus low-latency fetching; user properties override them."""

def kafka_producer_defaults() -> dict[str, str]: ...
def kafka_redacted(properties: Properties) -> dict[str, str]:
    """A copy with passwords, keys and connection strings masked."""

def event_hubs_properties(connection_string: str) -> dict[str, str]:
    """librdkafka settings for an Azure Event Hubs connection string (SASL_SSL, PLAIN,
    ``$ConnectionString``, keep-alive, port 9093). Raises ``InvalidArgumentError``."""

def parse_event_hubs_connection_string(connection_string: str) -> dict[str, str]:
    """``{host, key_name, entity_path, bootstrap}``; never the key."""

class KafkaSource:
    """Node mode: one consumer per process for its topics, every record routed into the hub
    by a channel template. Polls on a native thread; also seeks Kafka to replay a resume
    older than the hub's history."""

    def __init__(
        self,
        hub: Hub,
        *,
        properties: Properties,
        topics: Sequence[str],
        channel: str = "{topic}",
        event_type: str = "message",
        payload: PayloadFormat = "auto",
        group_prefix: str = "sessionstream",
        node_id: str = "",
        start: StartPosition = "latest",
        replay_max_events: int = 10000,
        replay_max_channels: int = 100000,
        replay_timeout: float = 2.0,
        poll_timeout: float = 0.1,
        replay_max_total_events: int = 1000000,
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None:
        """Stop polling, leave the group, close the consumer. Idempotent."""
    @property
    def running(self) -> bool: ...
    @property
    def group_id(self) -> str: ...
    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until partitions are assigned at known positions."""
    def health(self) -> dict[str, Any]: ...
    def take_log_notes(self) -> list[tuple[str, str, str]]:
        """``(level, kind, message)`` noted by the poll thread since the last call."""

class KafkaSessionPool:
    """Session mode (seed 000): one consumer group per browser session and domain, with a
    pool limit, explicit close and an idle sweep that leaves (and deletes) the group."""

    def __init__(
        self,
        hub: Hub,
        *,
        properties: Properties,
        domains: Sequence[tuple[str, str]] = (),
        topic_template: str = "{domain}",
        channel: str = "session:{session}",
        event_type: str = "{domain}",
        payload: PayloadFormat = "auto",
        group_prefix: str = "sessionstream",
        start: StartPosition = "latest",
        max_consumers: int = 100,
        idle_timeout: float = 3600.0,
        sweep_interval: float = 300.0,
        delete_groups: bool = True,
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def running(self) -> bool: ...
    def open(self, session_id: str, domain: str) -> dict[str, Any]:
        """The consumer of (session, domain), created when absent. Raises
        ``InvalidArgumentError``, ``KafkaPoolFullError``, ``KafkaError``, ``ClosedError``."""
    def close(self, session_id: str, domain: str) -> bool: ...
    def close_session(self, session_id: str) -> int: ...
    def sweep(self) -> int:
        """Close consumers idle for ``idle_timeout`` now; returns how many."""
    def wait_assigned(self, session_id: str, domain: str, timeout: float = 10.0) -> bool: ...
    def wait_closed(self, timeout: float = 10.0) -> bool:
        """Wait until every closed consumer has left (and deleted) its group."""
    def health(self) -> dict[str, Any]: ...
    def take_log_notes(self) -> list[tuple[str, str, str]]: ...

class KafkaSink:
    """A native producer with delivery reports."""

    def __init__(self, *, properties: Properties, queue_full_timeout: float = 1.0) -> None: ...
    def start(self) -> None: ...
    def stop(self, flush_timeout: float = 5.0) -> None: ...
    @property
    def running(self) -> bool: ...
    def produce(
        self,
        topic: str,
        value: str | bytes,
        key: str | bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
        partition: int = -1,
    ) -> None: ...
    def flush(self, timeout: float = 10.0) -> int:
        """Wait for delivery reports; returns how many records are still in flight."""
    def health(self) -> dict[str, Any]: ...
    def take_log_notes(self) -> list[tuple[str, str, str]]: ...

class KafkaAdmin:
    """Consumer groups, topics and a reachability probe; each call blocks up to its timeout."""

    def __init__(self, properties: Properties) -> None: ...
    def list_groups(self, timeout: float = 10.0) -> list[dict[str, Any]]: ...
    def describe_group(self, group: str, timeout: float = 10.0) -> dict[str, Any] | None: ...
    def delete_groups(self, groups: Sequence[str], timeout: float = 10.0) -> dict[str, str]: ...
    def create_topic(self, topic: str, partitions: int = 1, timeout: float = 10.0) -> None: ...
    def partitions(self, topic: str, timeout: float = 10.0) -> int | None: ...
    def reachable(self, timeout: float = 5.0) -> bool: ...

# -- Redis (hiredis) ---------------------------------------------------------------------

RedisPayloadFormat = Literal["auto", "json", "text"]

def validate_redis_url(url: str) -> str:
    """Parse ``redis://[[user]:password@]host[:port][/db]``; returns it with the password
    masked. Raises ``InvalidArgumentError`` (``rediss://`` included: no TLS in this build)."""

class RedisSource:
    """Node mode: one pub/sub connection per process, whatever the number of subscribers.
    Names with ``*``, ``?`` or ``[`` are PSUBSCRIBEd, others SUBSCRIBEd; each message is
    published into the hub on the channel the template names (``{channel}``: the Redis
    channel). Reads on a native thread, reconnects with backoff; Redis being down at start
    shows in ``health()``, never as an exception."""

    def __init__(
        self,
        hub: Hub,
        url: str,
        patterns: Sequence[str],
        *,
        channel: str = "{channel}",
        event_type: str = "message",
        payload: RedisPayloadFormat = "auto",
        connect_timeout: float = 2.0,
    ) -> None: ...
    def start(self) -> None:
        """Start the reader thread; returns at once. Idempotent."""
    def stop(self) -> None:
        """Stop reading, close the connection, join. Idempotent."""
    @property
    def running(self) -> bool: ...
    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait until subscribed to every channel and pattern."""
    def health(self) -> dict[str, Any]:
        """status, reason, running, connected, patterns, subscriptions, connections, received,
        published, skipped {invalid_channel, too_large, invalid_utf8, bad_json}, reconnects,
        errors, last_error, endpoint (password masked), log_notes_dropped, log_notes_suppressed,
        thread_faults {count, last, recent}."""
    def take_log_notes(self) -> list[tuple[str, str, str]]:
        """``(level, kind, message)`` noted by the reader thread since the last call."""

class RedisSessionStore(SessionStore):
    """Session data in Redis, shared by every node. Every write and touch sets the session's
    keys to expire after ``idle_timeout``, so Redis drops idle sessions itself. Construction
    never connects; a call while Redis is unreachable raises ``UnavailableError``."""

    def __init__(  # type: ignore[override]
        self,
        url: str,
        *,
        key_prefix: str = "sessionstream",
        idle_timeout: float = 3600.0,
        max_history_entries: int = 1000,
        max_value_bytes: int = 1048576,
        connect_timeout: float = 2.0,
    ) -> None: ...
    def health(self) -> dict[str, Any]:
        """connected, endpoint (password masked), key_prefix, errors, last_error."""

class RedisStreamBus:
    """Redis Streams bus: numbers every event for all nodes of a hub with
    ``sequencing="external"`` and delivers it to each, so a ``Last-Event-ID`` from one node
    resumes exactly on another. Reads on a native thread; also replays resumes older than
    the hub's history from the stream (``max_len`` entries back)."""

    def __init__(
        self,
        hub: Hub,
        url: str,
        *,
        key_prefix: str = "sessionstream",
        max_len: int = 10000,
        connect_timeout: float = 2.0,
        catch_up_timeout: float = 1.0,
    ) -> None: ...
    def start(self) -> None:
        """Start the reader; never raises for Redis being down (health says degraded)."""
    def stop(self) -> None:
        """Join the reader, close the connections. Idempotent."""
    @property
    def running(self) -> bool: ...
    @property
    def stream_key(self) -> str: ...
    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until the reader is connected and the hub runs in the cluster epoch."""
    def publish(
        self,
        channel: str | bytes,
        data: str | bytes,
        event: str | bytes = "message",
        *,
        json: bool = False,
    ) -> str:
        """Append to the stream; returns the event id. Raises ``UnavailableError`` when Redis
        cannot be reached (or before the cluster epoch is known)."""
    def health(self) -> dict[str, Any]:
        """status, reason, running, connected, epoch, head, published, received, duplicates,
        lost, skipped (per kind), reconnects, errors, last_error, replays, replayed_events,
        replay_gaps, stream_key, max_len, endpoint (password masked), connections,
        log_notes_dropped, log_notes_suppressed, thread_faults {count, last, recent}."""
    def take_log_notes(self) -> list[tuple[str, str, str]]:
        """``(level, kind, message)`` noted by the reader since the last call."""
