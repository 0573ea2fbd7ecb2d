"""Kafka in a FastAPI app: :class:`KafkaStream` runs :class:`~sessionstream.kafka.KafkaClients`
on a :class:`~sessionstream.fastapi.StreamHub` and serves their routes and health::

    hub = StreamHub()
    kafka = KafkaStream(hub, KafkaSettings.from_env())
    app = FastAPI()
    app.include_router(hub.router)      # first: the hub starts before Kafka...
    app.include_router(kafka.router)    # ...and stops after it

With no broker configured (:attr:`KafkaSettings.configured` false) the router still
serves its health route and starts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sessionstream import _core
from sessionstream.fastapi.errors import error_response
from sessionstream.fastapi.health import sessions_visible
from sessionstream.fastapi.session import StreamSession, get_stream_session
from sessionstream.kafka import KafkaClients, KafkaSettings
from sessionstream.session_ids import SessionIdDisplay

if TYPE_CHECKING:
    from sessionstream.fastapi.hub import StreamHub

SessionDep = Annotated[StreamSession, Depends(get_stream_session)]


class KafkaStream:
    """Kafka sources, the session pool and the producer of one :class:`StreamHub`.

    Its :attr:`router` carries the lifespan (include it after ``hub.router``) and the
    routes, under ``prefix`` (default ``/kafka``):

    =====  ===================================  ==========================================
    GET    ``/kafka/health``                    health of every Kafka client
    POST   ``/kafka/events/{domain}/connect``   session mode: the caller's consumer for a
                                                domain; events arrive on its private channel
                                                with event type ``domain``
    POST   ``/kafka/events/{domain}/disconnect``  session mode: close that consumer
    POST   ``/kafka/cleanup``                   session mode: close all the caller's consumers
    =====  ===================================  ==========================================
    """

    def __init__(
        self, hub: StreamHub, settings: KafkaSettings | None = None, *, prefix: str = "/kafka"
    ) -> None:
        self.hub = hub
        self.clients = KafkaClients(hub.native, settings)
        self.prefix = prefix
        self._pump: asyncio.Task[None] | None = None
        self.router: APIRouter = self._build_router()
        if self.settings.configured:
            # One /health covers the pipeline: an unreachable broker degrades it too.
            # Counts only there; per-session detail is at /kafka/health, behind the
            # same gate as /health's session listing.
            hub.add_health_section("kafka", lambda: self.health(session_ids="none"))

    @property
    def settings(self) -> KafkaSettings:
        return self.clients.settings

    @property
    def source(self) -> _core.KafkaSource | None:
        return self.clients.source

    @property
    def pool(self) -> _core.KafkaSessionPool | None:
        return self.clients.pool

    @property
    def sink(self) -> _core.KafkaSink | None:
        return self.clients.sink

    @property
    def running(self) -> bool:
        return self.clients.running

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start the configured clients (off the event loop) and wait up to
        ``ready_timeout`` for the node source's partitions."""
        if self.running or not self.settings.configured:
            self.clients.start()  # logs that Kafka is not configured
            return
        await asyncio.to_thread(self.clients.start)
        if self.source is not None:
            # The source fills resume gaps by seeking partitions, which blocks.
            self.hub.blocking_resume = True
        self._pump = asyncio.create_task(self._pump_notes(), name="sessionstream-kafka-log")
        if self.settings.ready_timeout > 0:
            await asyncio.to_thread(self.clients.wait_ready, self.settings.ready_timeout)

    async def stop(self) -> None:
        """Stop every client: consumers leave their groups, the producer flushes."""
        # Closing blocks on the broker (LeaveGroup, flush): off the event loop.
        await asyncio.to_thread(self.clients.stop)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[dict[str, Any]]:
        await self.start()
        try:
            if app is not None and hasattr(app, "state"):
                app.state.sessionstream_kafka = self
            yield {"sessionstream_kafka": self}
        finally:
            await self.stop()

    async def _pump_notes(self) -> None:
        while True:
            await asyncio.sleep(self.settings.log_interval)
            self.clients.log_notes()

    # -- what the clients do ----------------------------------------------------------

    def publish(
        self,
        topic: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        partition: int = -1,
    ) -> None:
        """:meth:`KafkaClients.publish <sessionstream.kafka.KafkaClients.publish>`."""
        self.clients.publish(topic, data, key=key, headers=headers, partition=partition)

    def open_session(self, session_id: str, domain: str) -> dict[str, Any]:
        return self.clients.open_session(session_id, domain)

    def close_session_domain(self, session_id: str, domain: str) -> bool:
        return self.clients.close_session_domain(session_id, domain)

    def close_session(self, session_id: str) -> int:
        return self.clients.close_session(session_id)

    def health(self, *, session_ids: SessionIdDisplay = "hash") -> dict[str, Any]:
        return self.clients.health(session_ids=session_ids)

    # -- routes ---------------------------------------------------------------------------

    def _build_router(self) -> APIRouter:
        router = APIRouter(lifespan=self.lifespan, tags=["sessionstream-kafka"])  # type: ignore[arg-type]
        prefix = self.prefix

        def failure(exc: Exception) -> JSONResponse:
            if isinstance(exc, _core.KafkaPoolFullError):
                return error_response(
                    503,
                    "kafka_pool_full",
                    str(exc),
                    headers={"Retry-After": str(self.hub.config.retry_after_seconds)},
                    limit=getattr(exc, "limit", None),
                )
            if isinstance(exc, (_core.InvalidArgumentError, ValueError)):
                return error_response(400, "invalid_domain", str(exc))
            if isinstance(exc, _core.ClosedError):
                return error_response(503, "kafka_unavailable", str(exc))
            return error_response(502, "kafka_error", str(exc))

        @router.get(prefix + "/health", summary="Kafka health")
        async def kafka_health(request: Request) -> JSONResponse:
            visible = await sessions_visible(self.hub, request)
            display = self.hub.config.health_session_ids if visible else "none"
            doc = await asyncio.to_thread(self.health, session_ids=display)
            # Degraded is reported, not failed: like /health, the node still serves.
            return JSONResponse(doc)

        @router.post(prefix + "/events/{domain}/connect", summary="Open the session's consumer")
        async def connect(domain: str, session: SessionDep) -> JSONResponse:
            try:
                info = await asyncio.to_thread(self.open_session, session.id, domain)
            except (_core.SessionStreamError, ValueError) as exc:
                return failure(exc)
            return JSONResponse(
                {
                    "domain": domain,
                    "channel": info["channel"],
                    "event": domain,
                    "created": info["created"],
                    "assigned": info["assigned"],
                }
            )

        @router.post(prefix + "/events/{domain}/disconnect", summary="Close one domain")
        async def disconnect(domain: str, session: SessionDep) -> JSONResponse:
            try:
                closed = await asyncio.to_thread(self.close_session_domain, session.id, domain)
            except _core.SessionStreamError as exc:
                return failure(exc)
            return JSONResponse({"domain": domain, "closed": closed})

        @router.post(prefix + "/cleanup", summary="Close every consumer of the session")
        async def cleanup(session: SessionDep) -> JSONResponse:
            try:
                closed = await asyncio.to_thread(self.close_session, session.id)
            except _core.SessionStreamError as exc:
                return failure(exc)
            return JSONResponse({"closed_consumers": closed})

        return router


__all__ = ["KafkaStream"]
