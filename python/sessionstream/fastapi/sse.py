"""``GET {prefix}/sse``: Server-Sent Events for the browser's ``EventSource``.

The response is a raw ASGI callable rather than a ``StreamingResponse`` so that one
task owns the stream: it opens the connection with the core, sends ready-made frames
taken from the mailbox (one ``bytes`` per send), heartbeat comments when idle, and a
final ``close`` event; a second small task only listens for the client's disconnect so
that a client that goes away is cleaned up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from sessionstream._core import REPLACED_EVENT_ID, ClosedError, Connection
from sessionstream.fastapi import logs as connection_logs
from sessionstream.fastapi.delivery import send_within
from sessionstream.fastapi.errors import StreamHTTPError
from sessionstream.fastapi.session import StreamSession, cookie_header

if TYPE_CHECKING:
    from sessionstream.fastapi.contracts import StreamHost
    from sessionstream.fastapi.delivery import Slot

logger = logging.getLogger("sessionstream.sse")

HEARTBEAT = b": ping\n\n"


class SendTimeoutError(asyncio.TimeoutError):
    """A send to a client did not complete within ``send_timeout``."""


def sse_headers(session: StreamSession, hub: StreamHost) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache, no-transform"),
        (b"x-accel-buffering", b"no"),
        (b"connection", b"keep-alive"),
        (b"x-session-id", session.id.encode()),
    ]
    if session.generated:
        headers.append(cookie_header(session.id, hub.config))
    return headers


def welcome_frame(
    connection: Connection, resume: str, retry_ms: int, position: bytes = b""
) -> bytes:
    """The first frame of a stream. ``position`` (the core's id-only frame of a live stream)
    becomes the welcome's own ``id:``: every client, including those that ignore an id in a
    block without data (the npm ``eventsource`` package), then resumes from the stream's
    position even if it drops before its first event. A resumed stream's welcome has no
    id, so the client's Last-Event-ID stays that of the last event it received."""
    data = json.dumps(
        {
            "session_id": connection.session_id,
            "connection_id": connection.id,
            "resume": resume,
            "channels": connection.channels,
        },
        separators=(",", ":"),
    )
    id_line = position[:-1] if position else b""
    return id_line + f"retry: {retry_ms}\nevent: welcome\ndata: {data}\n\n".encode()


def split_position_frame(frames: bytes) -> tuple[bytes, bytes]:
    """Split a leading id-only block (``id: <x>\n\n``) from the frames after it."""
    if frames.startswith(b"id: "):
        end = frames.find(b"\n\n")
        if end != -1 and b"\n" not in frames[:end]:
            return frames[: end + 2], frames[end + 2 :]
    return b"", frames


def first_frames(connection: Connection, retry_ms: int, max_bytes: int) -> bytes:
    """The welcome, preceded for a resume by nothing and followed for a live stream by
    whatever the mailbox already holds."""
    resume = str(connection.resume)
    if resume != "live":
        return welcome_frame(connection, resume, retry_ms)
    frames, _, _ = connection.take(max_bytes)
    position, rest = split_position_frame(frames)
    return welcome_frame(connection, resume, retry_ms, position) + rest


def close_frame(reason: str, retry_ms: int | None) -> bytes:
    """The last frame of a stream. A replaced stream's sets the marker id
    :data:`~sessionstream._core.REPLACED_EVENT_ID`, so the EventSource's own reconnect
    arrives with it as ``Last-Event-ID`` and is answered 204, which stops it."""
    data = json.dumps({"reason": reason}, separators=(",", ":"))
    retry = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    marker = f"id: {REPLACED_EVENT_ID}\n" if reason == "replaced" else ""
    return f"{retry}{marker}event: close\ndata: {data}\n\n".encode()


def is_replaced_reconnect(last_event_id: str | None) -> bool:
    """Whether a request resumes from a replaced stream's close frame: an EventSource
    reconnecting by itself after another tab took over."""
    return last_event_id == REPLACED_EVENT_ID


class EventStreamResponse(Response):
    """One SSE stream. Opening happens when the response runs, so a connection can never
    be registered without the task that releases it."""

    media_type = "text/event-stream"

    def __init__(
        self,
        hub: StreamHost,
        session: StreamSession,
        channels: list[str],
        last_event_id: str | None,
    ) -> None:
        self.hub = hub
        self.session = session
        self.channels = channels
        self.last_event_id = last_event_id
        self.status_code = 200
        self.background = None
        self.raw_headers = sse_headers(session, hub)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.hub
        if is_replaced_reconnect(self.last_event_id):
            # 204 makes EventSource stop reconnecting; nothing is registered, so the tab
            # that replaced this one stays untouched. A page that wants the stream back
            # opens a new EventSource (no Last-Event-ID).
            await Response(status_code=204)(scope, receive, send)
            return
        handoff = hub.handoff_for(scope)
        try:
            connection = await hub.open_connection(
                self.session,
                self.channels,
                last_event_id=self.last_event_id,
                framing="sse",
                policy=hub.config.effective_sse_policy,
                native=handoff is not None,
            )
        except StreamHTTPError as exc:
            connection_logs.refused(hub, "sse", exc, self.session.id)
            await exc.response()(scope, receive, send)
            return
        if handoff is not None:
            await self._hand_off(send, handoff, connection)
            return
        delivery = hub.delivery()
        slot = delivery.register(connection, "sse")
        watcher = asyncio.create_task(_watch_disconnect(receive, slot))
        self._complete = False
        try:
            await self._stream(send, slot)
        except (SendTimeoutError, OSError) as exc:
            logger.debug("sse connection %s ended: %r", slot.id, exc)
        finally:
            watcher.cancel()
            hub.release(delivery, slot)
        if not self._complete and not slot.gone:
            # Ended without a close frame (deadline, send failure): end the body so the
            # server does not report an incomplete response.
            try:
                end: Message = {"type": "http.response.body", "body": b"", "more_body": False}
                await send_within(send, end, 1.0)
            except (asyncio.TimeoutError, OSError, RuntimeError):
                pass

    async def _hand_off(self, send: Send, handoff: Any, connection: Connection) -> None:
        """Send the head through ASGI (middleware adds its headers), detach the socket and
        give it with the first frames to the native engine, which owns it from now on."""
        from sessionstream.server.handoff import HandoffError  # loaded with the server

        cfg = self.hub.config
        initial = b""
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            initial = first_frames(connection, cfg.retry_ms, cfg.max_batch_bytes)
            detached = await handoff.detach()
        except HandoffError as exc:
            # The head went out: end the stream cleanly. The welcome carries the position,
            # so the client's reconnect resumes exactly.
            logger.info("handoff of sse connection %s refused: %s", connection.id, exc)
            connection.close("client_gone")
            with contextlib.suppress(OSError, RuntimeError, asyncio.TimeoutError):
                end: Message = {"type": "http.response.body", "body": initial, "more_body": False}
                await send_within(send, end, 1.0)
            return
        except BaseException:
            connection.close("client_gone")
            raise
        native = self.hub.native_delivery
        if native is None:  # the hub stopped while the socket was detached
            os.close(detached.fd)
            connection.close("shutdown")
            return
        try:
            native.adopt_sse(
                detached.fd,
                connection,
                chunked=detached.framing == "chunked",
                initial=initial,
                buffered=detached.buffered,
            )
        except ClosedError:  # shutting down: the engine closed socket and connection
            pass

    async def _stream(self, send: Send, slot: Slot) -> None:
        hub = self.hub
        cfg = hub.config
        connection = slot.connection
        timeout = cfg.send_timeout
        max_bytes = cfg.max_batch_bytes
        wake = slot.wake

        async def send_body(body: bytes) -> None:
            message: Message = {"type": "http.response.body", "body": body, "more_body": True}
            try:
                await send_within(send, message, timeout)
            except asyncio.TimeoutError:
                connection.close("slow_consumer")
                raise SendTimeoutError(f"send to connection {slot.id} timed out") from None
            slot.last_send = time.monotonic()

        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        wake.clear()
        await send_body(first_frames(connection, cfg.retry_ms, max_bytes))
        while True:
            wake.clear()
            if slot.abort:
                return
            frames, closed, reason = connection.take(max_bytes)
            if frames:
                await send_body(frames)
                continue
            if closed:
                if not slot.gone:
                    retry = cfg.retry_after_seconds * 1000 if reason == "shutdown" else None
                    await send_body(close_frame(reason, retry))
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    self._complete = True
                return
            if slot.gone:
                return
            if slot.heartbeat_due:
                slot.heartbeat_due = False
                await send_body(HEARTBEAT)
                continue
            await wake.wait()


async def _watch_disconnect(receive: Receive, slot: Slot) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            slot.mark_gone()
            return
