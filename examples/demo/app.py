"""The sessionstream demo: agent chat (seed 004), crawl progress (seed 001), dashboard.

Run:  python -m uvicorn examples.demo.app:app      (or: make demo)
Then open http://127.0.0.1:8000.

Environment: every ``SESSIONSTREAM_*`` setting (see ``sessionstream.config``), plus
``DEMO_AGENT_TOKEN_DELAY`` / ``DEMO_AGENT_SLOW_TOKEN_DELAY`` (seconds between reply tokens)
and ``DEMO_CRAWL_STEP_DELAY`` (seconds per crawled page).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from sessionstream import ClosedError, LifecycleEvent
from sessionstream.config import StreamConfig
from sessionstream.fastapi import (
    MessageContext,
    MessageError,
    StreamHub,
    StreamSession,
    get_stream_session,
)
from sessionstream.fastapi.kafka import KafkaStream
from sessionstream.kafka import KafkaSettings

from .agent import Agent, AgentError, ChatMessage, ScriptedAgent
from .crawl import CrawlLimitError, CrawlRegistry

STATIC = Path(__file__).parent / "static"
DASHBOARD_CHANNEL = "dashboard"
MAX_CHAT_TEXT = 4000


def demo_config() -> StreamConfig:
    """Environment settings, with the demo's defaults where the environment is silent."""
    defaults: dict[str, Any] = {"ws_policy": "swap_after_processing", "sse_policy": "all"}
    overrides = {
        key: value
        for key, value in defaults.items()
        if f"SESSIONSTREAM_{key.upper()}" not in os.environ
    }
    return StreamConfig.from_env(**overrides)


Session = Annotated[StreamSession, Depends(get_stream_session)]

KAFKA_DOMAINS = ("party", "deposits")


def demo_kafka_settings() -> KafkaSettings:
    """Kafka is on when ``SESSIONSTREAM_KAFKA_BOOTSTRAP_SERVERS`` (or an Event Hubs string)
    is set: the domains stream to every session from one node consumer (channel per topic),
    and the seed-000 per-session mode is available at ``/kafka/events/{domain}/connect``."""
    env_prefix = "SESSIONSTREAM_KAFKA_"
    defaults: dict[str, Any] = {
        "mode": "both",
        "topics": KAFKA_DOMAINS,
        "channel": "{topic}",
        "domains": {domain: domain for domain in KAFKA_DOMAINS},
    }
    return KafkaSettings.from_env(
        **{k: v for k, v in defaults.items() if f"{env_prefix}{k.upper()}" not in os.environ}
    )


class CrawlRequest(BaseModel):
    url: str = Field(default="https://example.com/docs", max_length=500)
    pages: int = Field(default=20, ge=1, le=200)


def create_app(
    config: StreamConfig | None = None,
    *,
    agent: Agent | None = None,
    crawl_step_delay: float | None = None,
) -> FastAPI:
    """Build the demo app; every argument defaults to the environment."""
    if agent is None:
        agent = ScriptedAgent(
            token_delay=float(os.environ.get("DEMO_AGENT_TOKEN_DELAY", "0.03")),
            slow_token_delay=float(os.environ.get("DEMO_AGENT_SLOW_TOKEN_DELAY", "0.1")),
        )
    if crawl_step_delay is None:
        crawl_step_delay = float(os.environ.get("DEMO_CRAWL_STEP_DELAY", "0.2"))

    hub = StreamHub(config or demo_config())
    crawls = CrawlRegistry(hub, step_delay=crawl_step_delay)
    busy_sessions: set[str] = set()
    recent_lifecycle: deque[dict[str, Any]] = deque(maxlen=20)

    kafka = KafkaStream(hub, demo_kafka_settings())
    kafka_channels = set(kafka.settings.node_topics) if kafka.settings.configured else set()

    def authorize(session: StreamSession, channel: str) -> bool:
        if channel == DASHBOARD_CHANNEL or channel in kafka_channels:
            return True
        return crawls.owns_channel(session.id, channel)

    hub.authorize = authorize

    @hub.on_lifecycle
    def remember(event: LifecycleEvent) -> None:
        recent_lifecycle.append(
            {
                "kind": event.kind,
                "connection_id": event.connection_id,
                "other_connection_id": event.other_connection_id,
                "detail": event.detail,
                "at": time.time(),
            }
        )

    @hub.message_handler("chat")
    async def chat(ctx: MessageContext, message: dict[str, Any]) -> None:
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            raise MessageError("invalid_message", 'chat needs a non-empty string "text"')
        if len(text) > MAX_CHAT_TEXT:
            raise MessageError("invalid_message", f"text is longer than {MAX_CHAT_TEXT} characters")
        session_id = ctx.session_id
        if session_id in busy_sessions:
            raise MessageError("busy", "a reply is still being written for this session")
        busy_sessions.add(session_id)
        turn = secrets.token_hex(4)
        ctx.reply({"type": "chat.accepted", "turn": turn})
        async with ctx.processing():
            try:
                history: list[ChatMessage] = [
                    json.loads(e) for e in ctx.store.history(session_id, 50)
                ]
                user: ChatMessage = {"role": "user", "text": text, "turn": turn}
                ctx.store.append_history(session_id, json.dumps(user))
                ctx.send_personal({**user, "connection_id": ctx.connection_id}, event="chat.user")
                ctx.send_personal({"processing": True, "turn": turn}, event="chat.status")
                parts: list[str] = []
                try:
                    async for token in agent.reply(history, text):
                        parts.append(token)
                        ctx.send_personal({"turn": turn, "token": token}, event="chat.token")
                except AgentError as exc:
                    hub.manager.record_error()
                    ctx.send_personal({"turn": turn, "error": str(exc)}, event="chat.error")
                    return
                answer: ChatMessage = {"role": "assistant", "text": "".join(parts), "turn": turn}
                ctx.store.append_history(session_id, json.dumps(answer))
                ctx.send_personal(answer, event="chat.done")
            finally:
                busy_sessions.discard(session_id)
                with contextlib.suppress(ClosedError):
                    ctx.send_personal({"processing": False, "turn": turn}, event="chat.status")

    @hub.message_handler("history")
    async def history(ctx: MessageContext, message: dict[str, Any]) -> dict[str, Any]:
        entries = [json.loads(e) for e in ctx.store.history(ctx.session_id, 100)]
        return {
            "type": "history",
            "messages": entries,
            "processing": ctx.session_id in busy_sessions,
        }

    async def publish_stats() -> None:
        while True:
            await asyncio.sleep(1.0)
            if hub.state != "running":
                continue
            try:
                m = hub.manager.metrics()
                hub.publish(
                    DASHBOARD_CHANNEL,
                    {
                        "active_connections": m["active_connections"],
                        "unique_browser_sessions": m["unique_browser_sessions"],
                        "processing_connections": m["processing_connections"],
                        "pending_swaps": m["pending_swaps"],
                        "total_connections_lifetime": m["opened_lifetime"],
                        "total_messages": m["client_messages"],
                        "total_errors": m["errors"],
                        "uptime_seconds": round(m["uptime_seconds"], 1),
                        **hub.rates(),
                        "recent": list(recent_lifecycle),
                    },
                    event="stats",
                )
            except ClosedError:
                continue

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stats = asyncio.create_task(publish_stats(), name="demo-stats")
        try:
            yield
        finally:
            stats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stats
            await crawls.aclose()

    app = FastAPI(title="sessionstream demo", lifespan=lifespan)
    app.include_router(hub.router)
    if kafka.settings.configured:
        app.include_router(kafka.router)  # after the hub's: Kafka starts after it, stops first
    app.state.kafka = kafka
    app.state.crawls = crawls
    app.state.hub = hub

    @app.post("/api/crawls", status_code=201)
    async def start_crawl(request: CrawlRequest, session: Session) -> Any:
        try:
            crawl = crawls.start(session.id, request.url, request.pages)
        except CrawlLimitError as exc:
            return JSONResponse({"error": "too_many_crawls", "detail": str(exc)}, status_code=429)
        return crawl.public()

    @app.get("/api/crawls")
    async def list_crawls(session: Session) -> dict[str, Any]:
        """The caller's crawls, with how many connections subscribe to each one."""
        return {
            "crawls": [
                {**c.public(), "subscribers": hub.subscriber_count(str(c.public()["channel"]))}
                for c in crawls.of_session(session.id)
            ]
        }

    @app.post("/api/session/cleanup")
    async def cleanup(session: Session) -> dict[str, Any]:
        """The demo's own state (crawls) plus the hub's (connections, store)."""
        result: dict[str, Any] = dict(hub.cleanup_session(session.id))
        result["crawls_cancelled"] = crawls.forget_session(session.id)
        return result

    def page(name: str) -> Any:
        async def serve() -> FileResponse:
            return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

        return serve

    app.get("/", include_in_schema=False)(page("index.html"))
    app.get("/chat", include_in_schema=False)(page("chat.html"))
    app.get("/crawl", include_in_schema=False)(page("crawl.html"))
    app.get("/dashboard", include_in_schema=False)(page("dashboard.html"))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


app = create_app()
