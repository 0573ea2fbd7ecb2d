"""``StreamHub``: the one object an app holds, a facade over the parts with one role each.

* :class:`~sessionstream.fastapi.runtime.HubRuntime`: the native ``Hub``, the
  ``ConnectionManager`` and the session store, created at start and closed at shutdown;
* :class:`~sessionstream.fastapi.connections.StreamConnections`: opening streams and the
  deliveries that carry them (per event loop in Python, the native engine);
* :class:`~sessionstream.fastapi.hooks.HubHooks`: the app's message handlers, health
  sections and lifecycle listeners;
* :class:`~sessionstream.fastapi.observability.HubSampler`: rates and recent incidents.

Its router carries the stream routes and its lifespan, so including the router is all an
app does::

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
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import HTTPConnection, Request

from sessionstream._core import (
    Connection,
    ConnectionManager,
    Hub,
    SessionStore,
    private_channel,
    validate_session_id,
)
from sessionstream.config import Policy, StreamConfig
from sessionstream.fastapi import logs as connection_logs
from sessionstream.fastapi.channels import ChannelForbiddenError, authorize_channels
from sessionstream.fastapi.connections import StreamConnections
from sessionstream.fastapi.contracts import (
    Authorizer,
    HealthAuthorizer,
    HealthSection,
    LifecycleListener,
)
from sessionstream.fastapi.delivery import LoopWaker, Slot
from sessionstream.fastapi.hooks import HubHooks
from sessionstream.fastapi.messages import MessageHandler
from sessionstream.fastapi.native import NativeDelivery, NativeSlot
from sessionstream.fastapi.observability import HubSampler
from sessionstream.fastapi.origin import parse_origins
from sessionstream.fastapi.rate_limit import RateKey, RateLimits
from sessionstream.fastapi.router import build_router
from sessionstream.fastapi.runtime import HubRuntime, HubState
from sessionstream.fastapi.session import StreamSession, running_hub, session_from
from sessionstream.fastapi.signals import DrainSignals
from sessionstream.payload import Publishable, encode_payload
from sessionstream.redis_backend import RedisBackend

if TYPE_CHECKING:
    from fastapi import APIRouter

logger = logging.getLogger("sessionstream")

__all__ = [
    "Authorizer",
    "ChannelForbiddenError",
    "HealthAuthorizer",
    "HealthSection",
    "HubState",
    "LifecycleListener",
    "Publishable",
    "StreamHub",
    "get_stream_hub",
]


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
        self.hooks = HubHooks()
        self.runtime = HubRuntime(self.config)
        self.connections = StreamConnections(self.runtime, on_lifecycle=self._drain_lifecycle)
        self.sampler = HubSampler(self.config.degraded_window)
        self._signals = DrainSignals(self.request_shutdown)
        self._sampling: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._add_redis_health()
        self.router: APIRouter = build_router(self)
        """Routes (stream, session, health, metrics) and the hub's lifespan; include it."""
        connection_logs.attach(self)

    def _add_redis_health(self) -> None:
        if self.runtime.redis is not None:
            self.hooks.add_health_section("redis", self.runtime.redis.health)

    # -- native objects -------------------------------------------------

    @property
    def native(self) -> Hub:
        """The native ``Hub`` (raises ``ClosedError`` after shutdown)."""
        return self.runtime.require_hub()

    @property
    def manager(self) -> ConnectionManager:
        return self.runtime.require_manager()

    @property
    def redis(self) -> RedisBackend | None:
        """The Redis parts (stream bus, pub/sub source, session store) when configured."""
        return self.runtime.redis

    @property
    def store(self) -> SessionStore:
        """Per-session key/value and conversation history (thread-safe natively); in Redis,
        shared by every node, when ``redis_url`` is set."""
        return self.runtime.require_store()

    @property
    def state(self) -> HubState:
        return self.runtime.state

    @property
    def started_at(self) -> float:
        return self.runtime.started_at

    @property
    def blocking_resume(self) -> bool:
        """Whether a resume may block (a replay source seeks Kafka, Redis catches up):
        then connections with ``Last-Event-ID`` open off the event loop."""
        return self.runtime.blocking_resume

    @blocking_resume.setter
    def blocking_resume(self, value: bool) -> None:
        self.runtime.blocking_resume = value

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
        hub = self.runtime.require_hub()
        payload, is_json = encode_payload(data, json)
        redis = self.runtime.redis
        if redis is not None and redis.bus is not None:
            return redis.publish(channel, payload, event, json=is_json)
        self.runtime.refuse_while_draining()
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
        manager = self.runtime.require_manager()
        payload, is_json = encode_payload(data, json)
        redis = self.runtime.redis
        if redis is not None and redis.bus is not None:
            # The session's tabs may be connected to other nodes.
            validate_session_id(session_id)
            return redis.publish(private_channel(session_id), payload, event, json=is_json)
        self.runtime.refuse_while_draining()
        return manager.send_personal(session_id, payload, event, json=is_json)

    def subscriber_count(self, channel: str) -> int:
        return self.native.subscriber_count(channel)

    # -- hooks ----------------------------------------------------------

    def message_handler(self, message_type: str) -> Callable[[MessageHandler], MessageHandler]:
        """Register an async handler for WebSocket messages ``{"type": message_type, ...}``.

        ``async def handler(ctx: MessageContext, message: dict) -> dict | None``; a returned
        dict is sent to the connection as a reply.
        """

        def register(handler: MessageHandler) -> MessageHandler:
            self.hooks.add_message_handler(message_type, handler)
            return handler

        return register

    def add_message_handler(self, message_type: str, handler: MessageHandler) -> None:
        self.hooks.add_message_handler(message_type, handler)

    def handler_for(self, message_type: str) -> MessageHandler | None:
        return self.hooks.handler_for(message_type)

    @property
    def message_types(self) -> list[str]:
        return self.hooks.message_types

    def add_health_section(self, name: str, section: HealthSection) -> None:
        """Include ``section()`` in ``GET /health`` under ``name``.

        The section returns a dict with ``status`` and ``reasons``; a ``degraded`` status
        makes the whole document degraded, its reasons prefixed with ``name``. Sources
        such as Kafka register here so one health check covers the whole pipeline.
        """
        self.hooks.add_health_section(name, section)

    def health_sections(self) -> dict[str, HealthSection]:
        return self.hooks.health_sections()

    def on_lifecycle(self, listener: LifecycleListener) -> LifecycleListener:
        """Register ``listener(event)`` for connected / disconnected / swapped / replaced /
        standby / promoted / slow_consumer / rejected events. Called on the event loop;
        keep it short."""
        self.hooks.add_lifecycle_listener(listener)
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
        return await authorize_channels(session, channels, self.authorize)

    def delivery(self) -> LoopWaker:
        """The delivery of the running event loop (created on first use)."""
        return self.connections.delivery()

    def handoff_for(self, scope: Mapping[str, Any]) -> Any | None:
        """The server's handoff extension when this connection can be delivered natively,
        else ``None`` (the reason is logged once and counted for ``/health``)."""
        return self.connections.handoff_for(scope)

    @property
    def native_delivery(self) -> NativeDelivery | None:
        """The native engine's side of delivery while the hub runs with it."""
        return self.connections.native

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
        return await self.connections.open(
            session,
            channels,
            last_event_id=last_event_id,
            framing=framing,
            policy=policy,
            native=native,
        )

    @staticmethod
    def release(delivery: LoopWaker, slot: Slot) -> None:
        """Close the connection (idempotent) and forget its slot."""
        try:
            slot.connection.close("client_gone")
        finally:
            delivery.unregister(slot)

    def find_connection(self, connection_id: int) -> Slot | NativeSlot | None:
        return self.connections.find(connection_id)

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        """Open connections per delivery mode and transport."""
        return self.connections.counts()

    def delivery_status(self) -> dict[str, Any]:
        """How streams are delivered, for ``/health``."""
        return self.connections.status()

    def track_handler(self, task: asyncio.Task[None]) -> None:
        self.connections.track_handler(task)

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

    def _drain_lifecycle(self) -> None:
        hub = self.runtime.hub
        if hub is None:
            return
        events = hub.take_lifecycle()
        if events:
            self.hooks.notify_lifecycle(events)

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
        runtime = self.runtime
        if runtime.state == "running":
            return
        if runtime.closed:
            runtime.create()
            self._add_redis_health()
        self._loop = asyncio.get_running_loop()
        if runtime.redis is not None:
            runtime.redis.start()
        delivery = self.connections.start()
        self.native.set_lifecycle_notifier(delivery.notifier)
        runtime.state = "running"
        self._sampling = asyncio.create_task(self._sample_forever(), name="sessionstream-sampler")
        if self.config.drain_on_signal:
            self._signals.install()
        mode, why = self.connections.expected_mode()
        # Said once, where the operator sees it: under uvicorn's default logging only its
        # own loggers have handlers. Python delivery is a warning: the fix is one command.
        start_logger = logger
        if not logger.hasHandlers() and logging.getLogger("uvicorn.error").hasHandlers():
            start_logger = logging.getLogger("uvicorn.error")
        redis = runtime.redis
        where = redis.describe() if redis is not None else "events stay in this process"
        start_logger.log(
            logging.INFO if mode == "native" else logging.WARNING,
            "stream hub started (prefix %s): %s delivery, %s; %s",
            self.config.prefix,
            mode,
            why,
            where,
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
        if self.runtime.state != "running":
            return
        self.runtime.state = "draining"
        logger.info("stream hub draining: closing every connection with reason shutdown")
        self.connections.begin_shutdown()
        if self.runtime.manager is not None:
            self.runtime.manager.shutdown()

    async def shutdown(self) -> None:
        """Graceful shutdown: stop accepting, send every client a shutdown frame, wait up
        to ``shutdown_timeout`` for them to flush, then cut off the rest and close the core."""
        if self.runtime.state == "stopped" and self.runtime.hub is None:
            return
        self._begin_drain()
        loop = asyncio.get_running_loop()
        await self.connections.drain(loop.time() + self.config.shutdown_timeout)
        if self._sampling is not None:
            self._sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampling
            self._sampling = None
        self._signals.restore()
        self.connections.close()
        self.hooks.remove_health_section("redis")
        self.runtime.close()
        self._loop = None
        logger.info("stream hub stopped")

    # -- observability ----------------------------------------------------

    async def _sample_forever(self) -> None:
        # Once a second: rates and incident window. Every sweep period: drop channels
        # nobody subscribes to whose history aged out (the core has no timer of its own),
        # so per-task channels such as crawl:<id>:progress do not accumulate.
        sweep_every = max(1.0, min(30.0, self.config.history_max_age / 2))
        next_sweep = time.monotonic() + sweep_every
        while True:
            runtime = self.runtime
            if runtime.hub is not None and runtime.manager is not None:
                self.sampler.sample(time.monotonic(), runtime.hub, runtime.manager)
            if runtime.redis is not None:
                runtime.redis.log_notes()
            if time.monotonic() >= next_sweep and runtime.hub is not None:
                removed = runtime.hub.sweep()
                if removed:
                    logger.debug("swept %d idle channel(s)", removed)
                next_sweep = time.monotonic() + sweep_every
            await asyncio.sleep(1.0)

    def rates(self) -> dict[str, float]:
        """Per-second rates over the last few seconds."""
        return self.sampler.rates()

    def recent_incidents(self) -> dict[str, float]:
        """Slow-consumer disconnects, dropped events and errors within the degraded window."""
        return self.sampler.recent_incidents()

    def metrics(self) -> dict[str, Any]:
        """Connection-manager and hub counters in one dict (see ``/metrics``)."""
        out: dict[str, Any] = dict(self.manager.metrics())
        out.update({f"hub_{k}": v for k, v in self.native.metrics().items()})
        out.update(self.rates())
        return out


def get_stream_hub(connection: HTTPConnection) -> StreamHub:
    """Dependency: the :class:`StreamHub` serving this app.

    Found in the lifespan state (``request.state.sessionstream_hub``) or on
    ``app.state``; both are set when the hub's router is included and the app starts.
    """
    hub: StreamHub = running_hub(connection)
    return hub
