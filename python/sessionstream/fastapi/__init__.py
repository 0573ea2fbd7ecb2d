"""Streaming for FastAPI apps: SSE and WebSocket routes on the native core.

The one way to add it to an app::

    from fastapi import FastAPI
    from sessionstream.fastapi import StreamHub

    hub = StreamHub()                  # StreamConfig.from_env() unless given a config
    app = FastAPI()
    app.include_router(hub.router)     # routes under /stream, /health, /metrics, lifespan

    @app.post("/announce")
    async def announce(text: str) -> dict[str, str]:
        return {"id": hub.publish("news", {"text": text}, event="announcement")}

and in the browser ``new EventSource("/stream/sse?channel=news")``.
"""

from sessionstream.config import StreamConfig
from sessionstream.fastapi.errors import StreamHTTPError, WSClose
from sessionstream.fastapi.hub import Authorizer, ChannelForbiddenError, StreamHub, get_stream_hub
from sessionstream.fastapi.messages import MessageContext, MessageError, MessageHandler
from sessionstream.fastapi.session import (
    StreamSession,
    get_session_id,
    get_stream_session,
)

__all__ = [
    "Authorizer",
    "ChannelForbiddenError",
    "MessageContext",
    "MessageError",
    "MessageHandler",
    "StreamConfig",
    "StreamHTTPError",
    "StreamHub",
    "StreamSession",
    "WSClose",
    "get_session_id",
    "get_stream_hub",
    "get_stream_session",
]
