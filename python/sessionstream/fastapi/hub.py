"""``StreamHub``: the native core, its lifecycle in a FastAPI app, and the Python API.

A hub owns one native ``Hub`` (channels, history, fan-out), one ``ConnectionManager``
(sessions, tabs, limits, swap state) and one ``SessionStore``; per event loop it owns one
:class:`~sessionstream.fastapi.delivery.LoopDelivery`. Its router carries the stream
routes and its lifespan, so including the router is all an app does::

    hub = StreamHub()
    app = FastAPI()
    app.include_router(hub.router)

    @app.post("/announce")
    async def announce(text: str) -> dict[str, str]:
        return {"id": hub.publish("news", {"text": text}, event="announcement")}
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json as _json
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request

from sessionstream._core import (
    ClosedError,
    Connection,
    ConnectionManager,
    Hub,
    InvalidArgumentError,
    LifecycleEvent,
    LimitExceededError,
    SessionStore,
    TooManyChannelsError,
    UnavailableError,
    is_foreign_private_channel,
    private_channel,
    validate_session_id,
)
from sessionstream.config import Policy, StreamConfig
from sessionstream.fastapi import logs as connection_logs
from sessionstream.fastapi.delivery import LoopDelivery, Slot
from sessionstream.fastapi.errors import StreamHTTPError, limit_error, shutting_down_error
from sessionstream.fastapi.messages import RESERVED_TYPES, MessageHandler
from sessionstream.fastapi.native import HANDOFF_EXTENSION, NativeDelivery, NativeSlot
from sessionstream.fastapi.origin import parse_origins
from sessionstream.fastapi.rate_limit import RateKey, RateLimits
from sessionstream.fastapi.session import StreamSession, session_from
from sessionstream.redis_backend import RedisBackend, hub_sequencing, session_store
from sessionstream.session_ids import session_key

if TYPE_CHECKING:
    from fastapi import APIRouter

logger = logging.getLogger("sessionstream")

Authorizer = Callable[[StreamSession, str], "bool | Awaitable[bool]"]
HealthAuthorizer = Callable[[Request], "bool | Awaitable[bool]"]
LifecycleListener = Callable[[LifecycleEvent], None]
HealthSection = Callable[[], dict[str, Any]]
Publishable = (
    dict[str, Any] | list[Any] | str | bytes | bytearray | memoryview | int | float | bool | None
)
HubState = Literal["stopped", "running", "draining"]

MAX_CHANNELS_PER_REQUEST = 64


def encode_payload(data: Any, json: bool | None) -> tuple[str | bytes, bool]:
    """Return ``(payload, is_json)``: dict/list/number/bool/None are JSON-encoded,
    str and bytes are sent as they are. ``json`` overrides the detected flag."""
    if isinstance(data, str):
        payload: str | bytes = data
        detected = False
    elif isinstance(data, (bytes, bytearray, memoryview)):
        payload = bytes(data)
        detected = False
    elif isinstance(data, (dict, list, tuple, int, float, bool)) or data is None:
        payload = _json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        detected = True
    else:
        raise TypeError(
            f"cannot publish {type(data).__name__}: pass a dict, list, str, bytes or a JSON scalar"
        )
    return payload, detected if json is None else json


class ChannelForbiddenError(StreamHTTPError):
    def __init__(self, channel: str, why: str) -> None:
        super().__init__(
            403, "forbidden_channel", f"channel {channel!r}: {why}", extra={"channel": channel}
        )
        self.channel = channel


class _Window:
    """Counts of recent incidents (slow consumers, errors) for the health status."""

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


class StreamHub:
    """Live event streams for a FastAPI app: publish from Python, subscribe from browsers.

    Thread-safety: :meth:`publish`, :meth:`send_personal` and :meth:`request_shutdown` may
    be called from any thread; everything else belongs to the app's event loop.
    """

    def __init__(
        self,
        config: StreamConfig | None = None,
        *,
        authorize: Authorizer | None = None,
        health_authorize: HealthAuthorizer | None = None,
    ) -> None:
        """Create a hub. ``config`` defaults to :meth:`StreamConfig.from_env`.

        ``authorize(session, channel)`` decides every subscription (SSE, WebSocket
        connect and ``subscribe``); it may be async. A session's own private channel is
        always allowed and another session's never, whatever the hook says.

        ``health_authorize(request)`` (may be async) decides whether a ``/health`` request
        sees the per-session listing when ``config.health_sessions`` is ``authorized``.
        """
        self.config: StreamConfig = config if config is not None else StreamConfig.from_env()
        self.authorize: Authorizer | None = authorize
        self.health_authorize: HealthAuthorizer | None = health_authorize
        self.allowed_origins: frozenset[str] = parse_origins(
            self.config.ws_allowed_origins
        ) | parse_origins(self.config.cors_allowed_origins)
        """Origins besides the server's own whose pages may open WebSocket streams (the
        CORS origins are trusted with the session's cookie too)."""
        self.rate_limits = RateLimits(self.config)
        """Token buckets of new connections, client messages and :meth:`rate_limited`."""
        self._health_sections: dict[str, HealthSection] = {}
        self._handlers: dict[str, MessageHandler] = {}
        self._lifecycle_listeners: list[LifecycleListener] = []
        self._state: HubState = "stopped"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliveries: dict[asyncio.AbstractEventLoop, LoopDelivery] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._sampler: asyncio.Task[None] | None = None
        self._window = _Window()
        self._signals: dict[int, tuple[Any, Any]] = {}
        self._started_at = time.time()
        self._hub: Hub | None = None
        self._manager: ConnectionManager | None = None
        self._store: SessionStore | None = None
        self._redis: RedisBackend | None = None
        self._native: NativeDelivery | None = None
        # Why streams fall back to Python delivery; each reason is logged once.
        self._fallback_reasons: dict[str, int] = {}
        # Resumes may block (a replay source seeks Kafka): then opens run off the loop.
        self.blocking_resume = False
        self._create_core()
        from sessionstream.fastapi.router import build_router

        self.router: APIRouter = build_router(self)
        """Routes (stream, session, health, metrics) and the hub's lifespan; include it."""
        connection_logs.attach(self)

    # -- native objects -------------------------------------------------

    def _create_core(self) -> None:
        cfg = self.config
        self._hub = Hub(
            history_max_events=cfg.history_max_events,
            history_max_age=cfg.history_max_age,
            max_event_bytes=cfg.max_event_bytes,
            sequencing=hub_sequencing(cfg),
            max_channels_per_connection=cfg.max_channels_per_connection,
        )
        self._manager = ConnectionManager(
            self._hub,
            max_connections=cfg.max_connections,
            max_per_ip=cfg.max_per_ip,
            max_per_session=cfg.max_per_session,
            policy=cfg.policy,
        )
        self._store = session_store(cfg)
        if cfg.redis_url is not None:
            self._redis = RedisBackend(cfg, self._hub, self._store)
            self.add_health_section("redis", self._redis.health)
            # A resume may read the stream or wait for this node to catch up with it.
            self.blocking_resume = self.blocking_resume or self._redis.bus is not None
        self._started_at = time.time()

    @property
    def native(self) -> Hub:
        """The native ``Hub`` (raises ``ClosedError`` after shutdown)."""
        if self._hub is None:
            raise ClosedError("the stream hub is shut down")
        return self._hub

    @property
    def manager(self) -> ConnectionManager:
        if self._manager is None:
            raise ClosedError("the stream hub is shut down")
        return self._manager

    @property
    def redis(self) -> RedisBackend | None:
        """The Redis parts (stream bus, pub/sub source, session store) when configured."""
        return self._redis

    @property
    def store(self) -> SessionStore:
        """Per-session key/value and conversation history (thread-safe natively); in Redis,
        shared by every node, when ``redis_url`` is set."""
        if self._store is None:
            raise ClosedError("the stream hub is shut down")
        return self._store

    @property
    def state(self) -> HubState:
        return self._state

    @property
    def started_at(self) -> float:
        return self._started_at

    # -- publishing -----------------------------------------------------

    def publish(
        self, channel: str, data: Publishable, event: str = "message", *, json: bool | None = None
    ) -> str:
        """Publish ``data`` to ``channel`` and return its event id (``"<epoch>-<seq>"``).

        dict/list (and JSON scalars) are JSON-encoded and embedded as JSON in WebSocket
        frames; str and bytes are sent as they are (``json=True`` marks a str as JSON
        text). Multi-line data is safe. Raises ``InvalidArgumentError`` for a bad channel
        name or ``json=True`` data that is not one JSON value, ``InvalidUtf8Error`` (an
        ``InvalidArgumentError``, naming the byte offset) when bytes or the event type are
        not valid UTF-8, ``PayloadTooLargeError`` above ``max_event_bytes``, ``ClosedError``
        after shutdown.

        With Redis streams configured the event goes through Redis to every worker and
        node (this one included) and the call waits for Redis to number it (one round
        trip, the GIL released); ``UnavailableError`` then means Redis is unreachable and
        nothing was published.
        """
        hub = self._hub
        if hub is None:
            raise ClosedError("the stream hub is shut down")
        payload, is_json = encode_payload(data, json)
        redis = self._redis
        if redis is not None and redis.bus is not None:
            return redis.publish(channel, payload, event, json=is_json)
        self._refuse_while_draining()
        return hub.publish(channel, payload, event, json=is_json)

    def send_personal(
        self,
        session_id: str,
        data: Publishable,
        event: str = "message",
        *,
        json: bool | None = None,
    ) -> str:
        """Publish to a session's private channel ``session:<id>``; every connection
        (tab) of that session receives it. Returns the event id."""
        manager = self._manager
        if manager is None:
            raise ClosedError("the stream hub is shut down")
        payload, is_json = encode_payload(data, json)
        redis = self._redis
        if redis is not None and redis.bus is not None:
            # The session's tabs may be connected to other nodes.
            validate_session_id(session_id)
            return redis.publish(private_channel(session_id), payload, event, json=is_json)
        self._refuse_while_draining()
        return manager.send_personal(session_id, payload, event, json=is_json)

    def _refuse_while_draining(self) -> None:
        # Every connection already has its shutdown frame and the history ends with this
        # process: an event accepted now would be acknowledged and then lost.
        if self._state == "draining":
            raise UnavailableError(
                "the stream hub is draining for shutdown: the event was not published;"
                " publish it again once a running node serves the stream"
            )

    def subscriber_count(self, channel: str) -> int:
        return self.native.subscriber_count(channel)

    # -- hooks ----------------------------------------------------------

    def message_handler(self, message_type: str) -> Callable[[MessageHandler], MessageHandler]:
        """Register an async handler for WebSocket messages ``{"type": message_type, ...}``.

        ``async def handler(ctx: MessageContext, message: dict) -> dict | None``; a returned
        dict is sent to the connection as a reply.
        """

        def register(handler: MessageHandler) -> MessageHandler:
            self.add_message_handler(message_type, handler)
            return handler

        return register

    def add_message_handler(self, message_type: str, handler: MessageHandler) -> None:
        if message_type in RESERVED_TYPES:
            raise ValueError(
                f"message type {message_type!r} is built in; reserved: {sorted(RESERVED_TYPES)}"
            )
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"handler for {message_type!r} must be an async function")
        self._handlers[message_type] = handler

    def handler_for(self, message_type: str) -> MessageHandler | None:
        return self._handlers.get(message_type)

    @property
    def message_types(self) -> list[str]:
        return sorted(RESERVED_TYPES - {"pong"} | set(self._handlers))

    def add_health_section(self, name: str, section: HealthSection) -> None:
        """Include ``section()`` in ``GET /health`` under ``name``.

        The section returns a dict with ``status`` and ``reasons``; a ``degraded`` status
        makes the whole document degraded, its reasons prefixed with ``name``. Sources
        such as Kafka register here so one health check covers the whole pipeline.
        """
        self._health_sections[name] = section

    def health_sections(self) -> dict[str, HealthSection]:
        return dict(self._health_sections)

    def on_lifecycle(self, listener: LifecycleListener) -> LifecycleListener:
        """Register ``listener(event)`` for connected / disconnected / swapped / replaced /
        standby / promoted / slow_consumer / rejected events. Called on the event loop;
        keep it short."""
        self._lifecycle_listeners.append(listener)
        return listener

    def rate_limited(
        self, rate: float, burst: int, *, key: RateKey = "session", name: str | None = None
    ) -> Callable[[Request], Awaitable[None]]:
        """A FastAPI dependency that limits a route to ``rate`` requests per second
        (``burst`` at once) per browser session, or per client address with
        ``key="ip"``; over it the route answers 429 with ``Retry-After``::

            @app.post("/api/chat", dependencies=[Depends(hub.rate_limited(2, burst=5))])

        A request without a session id is limited by its address (a new id each time
        would otherwise escape the limit). Each call makes its own buckets.
        """
        config = self.config
        return self.rate_limits.dependency(
            lambda request: session_from(request, config, "http"), rate, burst, key, name
        )

    # -- authorization and connections -----------------------------------

    async def authorize_channels(
        self, session: StreamSession, channels: Iterable[str]
    ) -> list[str]:
        """Deduplicate and authorize requested channels; raise ``ChannelForbiddenError``.

        The session's own private channel is dropped from the result (every connection is
        subscribed to it anyway).
        """
        own = private_channel(session.id)
        result: list[str] = []
        seen: set[str] = set()
        for channel in channels:
            if channel in seen or channel == own:
                continue
            seen.add(channel)
            if len(seen) > MAX_CHANNELS_PER_REQUEST:
                raise StreamHTTPError(
                    400,
                    "too_many_channels",
                    f"at most {MAX_CHANNELS_PER_REQUEST} channels per request",
                )
            if is_foreign_private_channel(channel, session.id):
                raise ChannelForbiddenError(channel, "another session's private channel")
            if self.authorize is not None:
                allowed = self.authorize(session, channel)
                if inspect.isawaitable(allowed):
                    allowed = await allowed
                if not allowed:
                    raise ChannelForbiddenError(channel, "not authorized for this session")
            result.append(channel)
        return result

    def delivery(self) -> LoopDelivery:
        """The delivery of the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        delivery = self._deliveries.get(loop)
        if delivery is None:
            delivery = LoopDelivery(
                loop,
                heartbeat_interval=self.config.heartbeat_interval,
                on_lifecycle=self._drain_lifecycle,
                on_inbound=self._drain_inbound,
            )
            self._deliveries[loop] = delivery
        return delivery

    def handoff_for(self, scope: Mapping[str, Any]) -> Any | None:
        """The server's handoff extension when this connection can be delivered natively,
        else ``None`` (the reason is logged once and counted for ``/health``)."""
        if self._native is None or self._state != "running":
            return None
        handoff = (scope.get("extensions") or {}).get(HANDOFF_EXTENSION)
        if handoff is None:
            self._note_fallback(
                "the server offers no sessionstream.handoff extension (start it with"
                " `sessionstream serve` or uvicorn --http/--ws sessionstream.server classes)"
            )
            return None
        reason = handoff.unavailable_reason()
        if reason is not None:
            self._note_fallback(reason)
            return None
        return handoff

    def _note_fallback(self, reason: str) -> None:
        if reason not in self._fallback_reasons:
            if len(self._fallback_reasons) >= 32:  # reasons are few; never let them grow
                return
            logger.info("python delivery for a stream: %s", reason)
            self._fallback_reasons[reason] = 0
        self._fallback_reasons[reason] += 1

    @property
    def native_delivery(self) -> NativeDelivery | None:
        """The native engine's side of delivery while the hub runs with it."""
        return self._native

    async def open_connection(
        self,
        session: StreamSession,
        channels: list[str],
        *,
        last_event_id: str | None,
        framing: Literal["sse", "websocket"],
        policy: Policy,
        native: bool = False,
    ) -> Connection:
        """Register a connection with the core.

        ``native`` opens it for the engine (the caller hands its socket over next);
        otherwise for this loop's Python delivery (the caller registers a slot). Raises
        :class:`StreamHTTPError` (limits, shutdown, invalid channel). The caller owns the
        connection and must close it or hand it to the engine.
        """
        if self._state == "draining":
            raise shutting_down_error(self.config.retry_after_seconds)
        manager = self._manager
        if manager is None or (native and self._native is None):
            raise shutting_down_error(self.config.retry_after_seconds)
        cfg = self.config
        notifier = self._native.notifier() if native and self._native else self.delivery().notifier
        arguments: dict[str, Any] = {
            "notifier": notifier,
            "ip": session.ip,
            "channels": channels,
            "last_event_id": last_event_id,
            "framing": framing,
            "overflow": cfg.overflow,
            "mailbox_events": cfg.mailbox_events,
            "mailbox_bytes": cfg.mailbox_bytes,
            "policy": policy,
            # A policy replaces tabs of the same transport only: a chat WebSocket
            # never closes the same browser's SSE streams.
            "group": framing,
        }
        try:
            if last_event_id and self.blocking_resume:
                # A replay may seek Kafka for up to its timeout: never on the loop.
                connection = await asyncio.to_thread(manager.open, session.id, **arguments)
            else:
                connection = manager.open(session.id, **arguments)
        except LimitExceededError as exc:
            raise limit_error(exc, cfg.retry_after_seconds) from None
        except ClosedError:
            raise shutting_down_error(cfg.retry_after_seconds) from None
        except TooManyChannelsError as exc:
            raise StreamHTTPError(
                400, "too_many_channels", str(exc), extra={"limit": exc.limit}
            ) from None
        except InvalidArgumentError as exc:
            raise StreamHTTPError(400, "invalid_channel", str(exc)) from None
        return connection

    @staticmethod
    def release(delivery: LoopDelivery, slot: Slot) -> None:
        """Close the connection (idempotent) and forget its slot."""
        try:
            slot.connection.close("client_gone")
        finally:
            delivery.unregister(slot)

    def find_connection(self, connection_id: int) -> Slot | NativeSlot | None:
        for delivery in self._deliveries.values():
            slot = delivery.find(connection_id)
            if slot is not None:
                return slot
        if self._native is not None:
            return self._native.find(connection_id)
        return None

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        """Open connections per delivery mode and transport."""
        python = {"sse": 0, "websocket": 0}
        for delivery in self._deliveries.values():
            for slot in delivery.slots.values():
                python[slot.transport] = python.get(slot.transport, 0) + 1
        native = self._native.open_connections() if self._native else {"sse": 0, "websocket": 0}
        return {"native": native, "python": python}

    def delivery_status(self) -> dict[str, Any]:
        """How streams are delivered, for ``/health``."""
        mode, why = self._expected_mode()
        return {
            "mode": mode,
            "why": why,
            "native_engine": self._native is not None,
            "open": self.delivery_counts(),
            "fallback_reasons": dict(self._fallback_reasons),
        }

    def track_handler(self, task: asyncio.Task[None]) -> None:
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    # -- session operations (seed 000) -----------------------------------

    def disconnect_channel(self, session_id: str, channel: str) -> int:
        """Drop ``channel`` from every connection of a session; returns how many had it."""
        return self.manager.disconnect_channel(session_id, channel)

    def close_connection(self, session_id: str, connection_id: int) -> bool:
        """Close one connection of a session (the page-hide beacon), whichever delivery
        path owns it: its sender sees the closed mailbox and ends with a close frame."""
        return self.manager.close_connection(session_id, connection_id, "client_gone")

    def cleanup_session(self, session_id: str) -> dict[str, int | bool]:
        """Close every connection of a session (reason ``session_cleanup``) and drop its
        stored values and history."""
        closed = self.manager.close_session(session_id, "session_cleanup")
        erased = self.store.erase_session(session_id)
        return {"closed_connections": closed, "store_erased": erased}

    # -- lifecycle --------------------------------------------------------

    def _drain_inbound(self) -> None:
        if self._native is not None:
            self._native.drain_inbound()

    def _drain_lifecycle(self) -> None:
        hub = self._hub
        if hub is None:
            return
        events = hub.take_lifecycle()
        if not events:
            return
        for event in events:
            if event.kind in ("slow_consumer", "rejected"):
                logger.info(
                    "%s: connection=%s session=%s %s",
                    event.kind,
                    event.connection_id,
                    session_key(event.session_id, "hash"),
                    event.detail,
                )
            for listener in self._lifecycle_listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("lifecycle listener %r failed", listener)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[dict[str, Any]]:
        """Start the hub with the app and shut it down gracefully when the app stops.

        Part of :attr:`router`; FastAPI runs it when the router is included.
        """
        await self.start()
        try:
            if app is not None and hasattr(app, "state"):
                app.state.sessionstream_hub = self
            yield {"sessionstream_hub": self}
        finally:
            await self.shutdown()

    async def start(self) -> None:
        """Bind the hub to the running loop and start its background work."""
        if self._state == "running":
            return
        if self._hub is None or self._hub.closed:
            self._create_core()
        self._loop = asyncio.get_running_loop()
        if self._redis is not None:
            self._redis.start()
        delivery = self.delivery()
        self.native.set_lifecycle_notifier(delivery.notifier)
        if self.config.native_delivery and self._native is None:
            self._native = NativeDelivery(self.config, delivery.notifier)
        self._state = "running"
        self._sampler = asyncio.create_task(self._sample_forever(), name="sessionstream-sampler")
        self._install_signal_handlers()
        mode, why = self._expected_mode()
        # Said once, where the operator sees it: under uvicorn's default logging only its
        # own loggers have handlers. Python delivery is a warning: the fix is one command.
        start_logger = logger
        if not logger.hasHandlers() and logging.getLogger("uvicorn.error").hasHandlers():
            start_logger = logging.getLogger("uvicorn.error")
        start_logger.log(
            logging.INFO if mode == "native" else logging.WARNING,
            "stream hub started (prefix %s): %s delivery, %s; %s",
            self.config.prefix,
            mode,
            why,
            self._redis.describe() if self._redis is not None else "events stay in this process",
        )

    def _expected_mode(self) -> tuple[Literal["native", "python"], str]:
        if self._native is None:
            return "python", "native_delivery is off"
        threads = self.config.native_threads
        engine = f"{threads} engine thread{'s' if threads > 1 else ''}"
        # The server resolves its protocol classes before it imports the app.
        if "sessionstream.server.protocols" in sys.modules:
            return "native", f"{engine}; the server offers the handoff extension"
        return "python", (
            f"native engine idle ({engine}): the server does not load the sessionstream.server"
            " protocol classes; start it with `sessionstream serve` for native delivery"
        )

    def request_shutdown(self) -> None:
        """Start draining now: refuse new connections and send every client its shutdown
        frame. Thread-safe and idempotent; :meth:`shutdown` completes the work.

        Servers wait for open requests before they run the app's lifespan shutdown, and a
        stream never ends by itself, so a server must trigger this first. Under uvicorn in
        the main thread SIGINT/SIGTERM do it (``drain_on_signal``).
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._begin_drain()
        else:
            loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        if self._state != "running":
            return
        self._state = "draining"
        logger.info("stream hub draining: closing every connection with reason shutdown")
        if self._native is not None:
            self._native.begin_shutdown()
        if self._manager is not None:
            self._manager.shutdown()

    async def shutdown(self) -> None:
        """Graceful shutdown: stop accepting, send every client a shutdown frame, wait up
        to ``shutdown_timeout`` for them to flush, then cut off the rest and close the core."""
        if self._state == "stopped" and self._hub is None:
            return
        self._begin_drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_timeout
        deliveries = [d for d in self._deliveries.values() if d.loop is loop]
        if deliveries:
            waiter = asyncio.gather(*(d.wait_empty() for d in deliveries))
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                left = sum(len(d.slots) for d in deliveries)
                logger.warning("shutdown deadline passed; cutting off %d connection(s)", left)
                for delivery in deliveries:
                    delivery.abort_all()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        asyncio.gather(*(d.wait_empty() for d in deliveries)), 1.0
                    )
        if self._native is not None and not await self._native.wait_idle(
            max(0.0, deadline - loop.time())
        ):
            left = sum(self._native.open_connections().values())
            logger.warning("shutdown deadline passed; cutting off %d native connection(s)", left)
        handlers = [t for t in self._handler_tasks if not t.done()]
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=max(0.0, deadline - loop.time()))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        self._restore_signal_handlers()
        for delivery in list(self._deliveries.values()):
            if delivery.loop is loop:
                delivery.close()
            elif not delivery.loop.is_closed():
                # remove_reader belongs to the delivery's own loop thread.
                delivery.loop.call_soon_threadsafe(delivery.close)
        self._deliveries.clear()
        if self._native is not None:
            self._native.stop()
            self._native = None
        if self._redis is not None:
            self._redis.stop()
            self._redis.log_notes()
            self._redis = None
            self._health_sections.pop("redis", None)
        if self._hub is not None:
            self._hub.close()
        self._hub = None
        self._manager = None
        self._store = None
        self._state = "stopped"
        self._loop = None
        logger.info("stream hub stopped")

    def _install_signal_handlers(self) -> None:
        if not self.config.drain_on_signal:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue
            handler = functools.partial(self._on_signal, previous)
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):  # pragma: no cover - not the main interpreter
                continue
            self._signals[sig] = (handler, previous)

    def _restore_signal_handlers(self) -> None:
        for sig, (handler, previous) in self._signals.items():
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, previous)
        self._signals.clear()

    def _on_signal(self, previous: Callable[[int, Any], Any], signum: int, frame: Any) -> None:
        self.request_shutdown()
        previous(signum, frame)

    # -- observability ----------------------------------------------------

    async def _sample_forever(self) -> None:
        # Once a second: rates and incident window. Every sweep period: drop channels
        # nobody subscribes to whose history aged out (the core has no timer of its own),
        # so per-task channels such as crawl:<id>:progress do not accumulate.
        sweep_every = max(1.0, min(30.0, self.config.history_max_age / 2))
        next_sweep = time.monotonic() + sweep_every
        while True:
            self._sample()
            if self._redis is not None:
                self._redis.log_notes()
            if time.monotonic() >= next_sweep and self._hub is not None:
                removed = self._hub.sweep()
                if removed:
                    logger.debug("swept %d idle channel(s)", removed)
                next_sweep = time.monotonic() + sweep_every
            await asyncio.sleep(1.0)

    def _sample(self) -> None:
        hub, manager = self._hub, self._manager
        if hub is None or manager is None:
            return
        values: dict[str, float] = {k: float(v) for k, v in hub.metrics().items()}
        m = manager.metrics()
        values["total_messages"] = float(m["total_messages"])
        values["total_errors"] = float(m["total_errors"])
        keep = max(self.config.degraded_window, 10.0)
        self._window.add(time.monotonic(), values, keep)

    def rates(self) -> dict[str, float]:
        """Per-second rates over the last few seconds."""
        return {
            "published_per_second": round(self._window.rate("published"), 2),
            "delivered_per_second": round(self._window.rate("delivered"), 2),
            "messages_per_second": round(self._window.rate("total_messages"), 2),
        }

    def recent_incidents(self) -> dict[str, float]:
        """Slow-consumer disconnects, dropped events and errors within the degraded window."""
        return {
            "slow_consumer_disconnects": self._window.increase("slow_consumer_disconnects"),
            "dropped": self._window.increase("dropped"),
            "errors": self._window.increase("total_errors"),
        }

    def metrics(self) -> dict[str, Any]:
        """Connection-manager and hub counters in one dict (see ``/metrics``)."""
        out: dict[str, Any] = dict(self.manager.metrics())
        out.update({f"hub_{k}": v for k, v in self.native.metrics().items()})
        out.update(self.rates())
        return out
