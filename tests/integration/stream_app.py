"""A plain app around the library for protocol tests; configured by ``SESSIONSTREAM_*``.

It adds test-only routes to publish and inspect, which a real app would not expose.
Channels starting with ``forbidden:`` are refused by its ``authorize`` hook. ``/health``
lists sessions to every caller unless ``SESSIONSTREAM_HEALTH_SESSIONS`` says otherwise;
under ``authorized`` a request with ``X-Health-Token: $STREAM_APP_HEALTH_TOKEN`` sees them.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sessionstream import InvalidUtf8Error, UnavailableError
from sessionstream.config import StreamConfig
from sessionstream.fastapi import MessageContext, MessageError, StreamHub, StreamSession


def authorize(session: StreamSession, channel: str) -> bool:
    return not channel.startswith("forbidden:")


async def health_authorize(request: Request) -> bool:
    token = os.environ.get("STREAM_APP_HEALTH_TOKEN")
    return bool(token) and request.headers.get("X-Health-Token") == token


def config() -> StreamConfig:
    # The protocol tests read per-session health detail: opted in unless told otherwise.
    if "SESSIONSTREAM_HEALTH_SESSIONS" in os.environ:
        return StreamConfig.from_env()
    return StreamConfig.from_env(health_sessions="always")


class Publish(BaseModel):
    channel: str
    data: Any = None
    event: str = "message"
    count: int = 1
    raw: bool = False


def create_app(hub: StreamHub | None = None) -> FastAPI:
    """A fresh app and hub (for servers run inside the test process)."""
    hub = hub or StreamHub(config(), authorize=authorize, health_authorize=health_authorize)
    app = FastAPI()
    app.include_router(hub.router)
    app.state.hub = hub
    _add_routes(app, hub)
    return app


def _add_routes(app: FastAPI, hub: StreamHub) -> None:
    @app.exception_handler(UnavailableError)
    async def unavailable(request: Request, exc: UnavailableError) -> JSONResponse:
        return JSONResponse({"error": "unavailable", "detail": str(exc)}, status_code=503)

    @app.post("/test/publish")
    async def publish(body: Publish) -> dict[str, list[str]]:
        # One synchronous loop: every event is queued before any sender runs.
        ids = []
        for index in range(body.count):
            data = body.data if body.count == 1 else {"n": index, "data": body.data}
            if body.raw:
                ids.append(hub.publish(body.channel, str(data), body.event))
            else:
                ids.append(hub.publish(body.channel, data, body.event))
        return {"ids": ids}

    @app.post("/test/publish_bytes")
    async def publish_bytes(request: Request, channel: str, event: str = "message") -> JSONResponse:
        # The request body as it is: bytes that need not be UTF-8.
        try:
            event_id = hub.publish(channel, await request.body(), event)
        except InvalidUtf8Error as exc:
            return JSONResponse(
                {
                    "error": "invalid_utf8",
                    "detail": str(exc),
                    "field": exc.field,
                    "offset": exc.offset,
                },
                status_code=422,
            )
        return JSONResponse({"ids": [event_id]})

    @app.post("/test/limited", dependencies=[Depends(hub.rate_limited(0.5, 2))])
    async def limited() -> dict[str, bool]:
        # An application route behind the hub's rate-limit dependency.
        return {"ok": True}

    @app.put("/test/store")
    async def store_set(session_id: str, key: str, value: str) -> dict[str, bool]:
        hub.store.set(session_id, key, value)
        return {"ok": True}

    @app.get("/test/store")
    async def store_get(session_id: str, key: str) -> dict[str, str | None]:
        return {"value": hub.store.get(session_id, key)}

    @app.post("/test/history")
    async def history_append(session_id: str, entry: str) -> dict[str, int]:
        return {"index": hub.store.append_history(session_id, entry)}

    @app.get("/test/history")
    async def history_get(session_id: str) -> dict[str, list[str]]:
        return {"entries": hub.store.history(session_id, 100)}

    @app.get("/test/pid")
    async def pid() -> dict[str, int]:
        # Which worker answered, and how many streams it holds (uvicorn --workers).
        return {"pid": os.getpid(), "streams": hub.manager.metrics()["active_connections"]}

    idle: list[Any] = []

    @app.post("/test/idle_sessions")
    async def idle_sessions(prefix: str, count: int) -> dict[str, int]:
        # Sessions registered in the manager without a client behind them, to measure
        # lookups and listings against many sessions without as many sockets.
        from sessionstream._core import Notifier

        notifier = Notifier()
        for index in range(count):
            idle.append(
                hub.manager.open(f"{prefix}-{index:06d}", notifier=notifier, channels=["idle"])
            )
        return {"sessions": hub.manager.session_count()}

    @app.delete("/test/idle_sessions")
    async def drop_idle_sessions() -> dict[str, int]:
        while idle:
            idle.pop().close()
        return {"sessions": hub.manager.session_count()}

    @app.get("/test/subscribers")
    async def subscribers(channel: str) -> dict[str, int]:
        return {"count": hub.subscriber_count(channel)}

    @hub.message_handler("echo")
    async def echo(ctx: MessageContext, message: dict[str, Any]) -> dict[str, Any]:
        return {"type": "echo", "payload": message.get("payload")}

    @hub.message_handler("work")
    async def work(ctx: MessageContext, message: dict[str, Any]) -> dict[str, Any]:
        async with ctx.processing():
            await asyncio.sleep(float(message.get("seconds", 0.5)))
            ctx.send_personal({"done": True}, event="work.done")
        return {"type": "work.finished"}

    @hub.message_handler("explode")
    async def explode(ctx: MessageContext, message: dict[str, Any]) -> None:
        if message.get("expected"):
            raise MessageError("exploded", "asked to fail")
        raise RuntimeError("internal detail that must not reach the client")


app = create_app()
