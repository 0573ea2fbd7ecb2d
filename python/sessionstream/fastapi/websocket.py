"""``WS {prefix}/ws``: the WebSocket stream and its small JSON protocol.

Every server frame is a JSON array of message objects (several events per frame when a
client is behind); clients send one JSON object per frame. See ``docs/protocol.md``.

Two tasks per connection: the endpoint coroutine is the only sender (mailbox batches
taken from the core, then direct replies), the receiver task parses client messages and
starts a task per application message. A client that goes away wakes the sender, which
releases the connection at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from sessionstream._core import (
    ClosedError,
    Connection,
    InvalidArgumentError,
    SessionStreamError,
    TooManyChannelsError,
    UnavailableError,
    private_channel,
)
from sessionstream.fastapi import logs as connection_logs
from sessionstream.fastapi.delivery import send_within
from sessionstream.fastapi.errors import (
    StreamHTTPError,
    WSClose,
    close_code_for,
    close_reason_text,
)
from sessionstream.fastapi.frames import encode_frame, error_frame
from sessionstream.fastapi.messages import MessageContext, MessageError
from sessionstream.fastapi.origin import origin_allowed, shown_origin
from sessionstream.fastapi.rate_limit import TokenBucket
from sessionstream.fastapi.session import (
    InvalidSessionIdError,
    StreamSession,
    cookie_header,
    session_from,
)

if TYPE_CHECKING:
    from sessionstream.fastapi.contracts import AnyMessageHandler, StreamHost
    from sessionstream.fastapi.delivery import Slot
    from sessionstream.fastapi.native import NativeSlot

logger = logging.getLogger("sessionstream.websocket")


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    # A close code and reason can only be sent on an accepted socket.
    try:
        await websocket.accept()
        await websocket.close(code, close_reason_text(reason))
    except (WebSocketDisconnect, OSError, RuntimeError):  # the client left first
        pass


def _refusal(exc: StreamHTTPError) -> tuple[int, str]:
    if exc.status_code in (429, 503):
        limit = exc.body.get("limit")
        reason = f"{exc.error} (limit {limit})" if limit is not None else exc.error
        retry = exc.body.get("retry_after")
        if retry is not None:
            reason += f"; retry after {retry} s"
        return WSClose.TRY_AGAIN_LATER, reason
    if exc.error == "forbidden_channel":
        return WSClose.POLICY, f"forbidden_channel: {exc.body.get('channel', '')}"
    return WSClose.POLICY, f"{exc.error}: {exc.text}"


async def websocket_endpoint(websocket: WebSocket, hub: StreamHost) -> None:
    cfg = hub.config
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), hub.allowed_origins):
        # Refused before the handshake completes: the page gets a 403, nothing is opened.
        logger.info("websocket refused: origin %r is not allowed", shown_origin(origin))
        connection_logs.refused(hub, "websocket", None, websocket, error="origin_forbidden")
        await websocket.close(WSClose.POLICY)
        return
    try:
        session = session_from(websocket, cfg, "websocket")
    except InvalidSessionIdError as exc:
        connection_logs.refused(hub, "websocket", exc, None, code=WSClose.POLICY)
        await _refuse(websocket, WSClose.POLICY, f"{exc.error}: {exc.text}")
        return
    query = websocket.query_params
    last_event_id = query.get("last_event_id") or None
    handoff = hub.handoff_for(websocket.scope)
    try:
        hub.rate_limits.check_connect(session)
        channels = await hub.authorize_channels(session, query.getlist("channel"))
        connection = await hub.open_connection(
            session,
            channels,
            last_event_id=last_event_id,
            framing="websocket",
            policy=cfg.effective_ws_policy,
            native=handoff is not None,
        )
    except StreamHTTPError as exc:
        code, reason = _refusal(exc)
        connection_logs.refused(hub, "websocket", exc, session.id, code=code)
        await _refuse(websocket, code, reason)
        return
    welcome = encode_frame(
        {
            "type": "welcome",
            "session_id": session.id,
            "connection_id": connection.id,
            "resume": connection.resume,
            "channels": connection.channels,
            "message_types": hub.message_types,
            "max_message_bytes": cfg.ws_max_message_bytes,
        }
    )
    if handoff is not None:
        await _hand_off(websocket, hub, session, handoff, connection, welcome)
        return

    delivery = hub.delivery()
    slot = delivery.register(connection, "websocket")
    receiver: asyncio.Task[None] | None = None
    try:
        headers = [cookie_header(session.id, cfg)] if session.generated else None
        await websocket.accept(headers=headers)
        slot.post(welcome)
        receiver = asyncio.create_task(_receive_loop(websocket, hub, session, slot))
        await _send_loop(websocket, hub, slot)
    except (WebSocketDisconnect, OSError, RuntimeError) as exc:
        logger.debug("websocket connection %s ended: %r", slot.id, exc)
    finally:
        # Handlers still running for this connection now drop their direct replies.
        slot.gone = True
        if receiver is not None:
            receiver.cancel()
        hub.release(delivery, slot)


def upgrade_request(scope: Mapping[str, Any]) -> bytes:
    """The client's upgrade request as bytes, rebuilt from the scope, for the engine to
    answer with its own 101."""
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    lines = [b"GET " + target + b" HTTP/1.1"]
    lines.extend(name + b": " + value for name, value in scope["headers"])
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _hand_off(
    websocket: WebSocket,
    hub: StreamHost,
    session: StreamSession,
    handoff: Any,
    connection: Connection,
    welcome: str,
) -> None:
    """Detach the socket before the handshake and give it to the native engine, which
    answers the upgrade, sends the welcome and owns the connection from then on."""
    from sessionstream.server.handoff import HandoffError  # loaded with the server

    try:
        detached = await handoff.detach()
    except HandoffError as exc:
        logger.info("handoff of websocket connection %s refused: %s", connection.id, exc)
        connection.close("client_gone")
        await _refuse(websocket, WSClose.TRY_AGAIN_LATER, "handoff_failed")
        return
    except BaseException:
        connection.close("client_gone")
        raise
    native = hub.native_delivery
    if native is None:  # the hub stopped while the socket was detached
        os.close(detached.fd)
        connection.close("shutdown")
        return
    headers: list[tuple[str, str]] = []
    if session.generated:
        name, value = cookie_header(session.id, hub.config)
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    slots: list[NativeSlot] = []

    async def dispatch(text: str) -> None:
        await handle_text(hub, session, slots[0], text)

    try:
        slots.append(
            native.adopt_websocket(
                detached.fd,
                connection,
                request=upgrade_request(websocket.scope) + detached.buffered,
                headers=headers,
                welcome=welcome,
                dispatch=dispatch,
            )
        )
    except ClosedError:  # shutting down: the engine closed socket and connection
        pass


async def _send_loop(websocket: WebSocket, hub: StreamHost, slot: Slot) -> None:
    cfg = hub.config
    connection = slot.connection
    timeout = cfg.send_timeout
    max_bytes = cfg.max_batch_bytes
    wake = slot.wake
    outbox = slot.outbox
    send = websocket.send

    async def send_text(text: str) -> None:
        try:
            await send_within(send, {"type": "websocket.send", "text": text}, timeout)
        except asyncio.TimeoutError:
            connection.close("slow_consumer")
            raise OSError(f"send to connection {slot.id} timed out") from None
        slot.last_send = time.monotonic()

    while True:
        wake.clear()
        if slot.abort:
            return
        if outbox:
            await send_text(outbox.popleft())
            continue
        frames, closed, reason = connection.take(max_bytes)
        if frames:
            await send_text(frames.decode())
            continue
        if closed:
            if not slot.gone:
                await websocket.close(close_code_for(reason), close_reason_text(reason))
            return
        if slot.gone:
            return
        await wake.wait()


def _ref(message: dict[str, Any]) -> Any:
    ref = message.get("ref")
    return ref if isinstance(ref, (str, int, float)) and not isinstance(ref, bool) else None


def _channel_list(message: dict[str, Any]) -> list[str] | None:
    channels = message.get("channels")
    if channels is None and "channel" in message:
        channels = [message["channel"]]
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        return None
    return channels


async def _receive_loop(
    websocket: WebSocket, hub: StreamHost, session: StreamSession, slot: Slot
) -> None:
    limit = hub.config.ws_max_message_bytes
    bucket = TokenBucket(hub.config.ws_messages_per_second, hub.config.ws_message_burst)
    try:
        while True:
            message = await websocket.receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            if not bucket.take():
                slot.post(
                    error_frame(
                        "rate_limited",
                        f"more than {hub.config.ws_messages_per_second:g} messages per second"
                        f" (burst {hub.config.ws_message_burst}); message dropped",
                        retry_after=round(bucket.retry_after(), 3),
                    )
                )
                continue
            text = message.get("text")
            if text is None:
                size = len(message.get("bytes") or b"")
                if size > limit:
                    slot.post(_too_large(size, limit))
                else:
                    slot.post(
                        error_frame("binary_not_supported", "send JSON objects as text frames")
                    )
                continue
            await handle_text(hub, session, slot, text)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    finally:
        slot.mark_gone()


async def handle_text(
    hub: StreamHost, session: StreamSession, slot: Slot | NativeSlot, text: str
) -> None:
    """One client text message, on either delivery path (the per-connection rate limit
    is applied before; the per-session one, all tabs together, here)."""
    wait = hub.rate_limits.take_session_message(session.id)
    if wait:
        cfg = hub.config
        slot.post(
            error_frame(
                "rate_limited",
                f"this session sent more than {cfg.ws_session_messages_per_second:g} messages"
                f" per second (burst {cfg.ws_session_message_burst}) over all its"
                " connections; message dropped",
                retry_after=round(wait, 3),
            )
        )
        return
    limit = hub.config.ws_max_message_bytes
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        slot.post(_too_large(len(text.encode()), limit))
        return
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        slot.post(error_frame("invalid_json", f"not valid JSON: {exc.msg} at {exc.pos}"))
        return
    except ValueError as exc:  # JSON that Python refuses: an integer of over 4300 digits
        slot.post(error_frame("invalid_json", f"not accepted as JSON: {str(exc).split(':')[0]}"))
        return
    if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
        slot.post(
            error_frame(
                "invalid_message",
                'a message is a JSON object with a string "type", e.g. {"type":"ping"}',
            )
        )
        return
    await _dispatch(hub, session, slot, parsed)


def _too_large(size: int, limit: int) -> str:
    return error_frame(
        "message_too_large",
        f"message of {size} bytes exceeds the limit of {limit} bytes",
        limit=limit,
    )


async def _dispatch(
    hub: StreamHost, session: StreamSession, slot: Slot | NativeSlot, message: dict[str, Any]
) -> None:
    kind: str = message["type"]
    ref = _ref(message)
    if kind == "ping":
        pong: dict[str, Any] = {"type": "pong", "ts": time.time()}
        if "ts" in message:
            pong["echo"] = message["ts"]
        if ref is not None:
            pong["ref"] = ref
        slot.post(encode_frame(pong))
        return
    if kind == "pong":
        return
    if kind == "subscribe":
        await _subscribe(hub, session, slot, message, ref)
        return
    if kind == "unsubscribe":
        _unsubscribe(slot, message, ref)
        return
    handler = hub.handler_for(kind)
    if handler is None:
        slot.post(
            error_frame(
                "unknown_type",
                f"unknown message type {kind[:64]!r}; known: {', '.join(hub.message_types)}",
                ref,
            )
        )
        return
    if len(slot.handler_tasks) >= hub.config.ws_max_concurrent_handlers:
        slot.post(
            error_frame(
                "busy",
                f"{len(slot.handler_tasks)} messages of this connection are still being"
                " handled; wait for a reply",
                ref,
            )
        )
        return
    context = MessageContext(hub, slot, kind, ref)
    task = asyncio.create_task(_run_handler(hub, slot, handler, context, message))
    slot.handler_tasks.add(task)
    task.add_done_callback(slot.handler_tasks.discard)
    hub.track_handler(task)


async def _subscribe(
    hub: StreamHost,
    session: StreamSession,
    slot: Slot | NativeSlot,
    message: dict[str, Any],
    ref: Any,
) -> None:
    channels = _channel_list(message)
    last_event_id = message.get("last_event_id")
    if (
        channels is None
        or not channels
        or (last_event_id is not None and not isinstance(last_event_id, str))
    ):
        slot.post(
            error_frame(
                "invalid_message",
                'subscribe needs "channels": [names] (or "channel": name) and an optional'
                ' string "last_event_id"',
                ref,
            )
        )
        return
    try:
        allowed = await hub.authorize_channels(session, channels)
        resume = slot.connection.subscribe(allowed, last_event_id or None) if allowed else "live"
    except StreamHTTPError as exc:
        slot.post(error_frame(exc.error, exc.text, ref, **_extra(exc)))
        return
    except TooManyChannelsError as exc:
        slot.post(error_frame("too_many_channels", str(exc), ref, limit=exc.limit))
        return
    except InvalidArgumentError as exc:
        slot.post(error_frame("invalid_channel", str(exc), ref))
        return
    except ClosedError:
        return
    reply: dict[str, Any] = {"type": "subscribed", "channels": allowed, "resume": resume}
    if ref is not None:
        reply["ref"] = ref
    slot.post(encode_frame(reply))


def _extra(exc: StreamHTTPError) -> dict[str, Any]:
    return {k: v for k, v in exc.body.items() if k not in ("error", "detail")}


def _unsubscribe(slot: Slot | NativeSlot, message: dict[str, Any], ref: Any) -> None:
    channels = _channel_list(message)
    if channels is None or not channels:
        slot.post(
            error_frame(
                "invalid_message", 'unsubscribe needs "channels": [names] or "channel": name', ref
            )
        )
        return
    own = private_channel(slot.session_id)
    if own in channels:
        slot.post(
            error_frame(
                "invalid_channel",
                f"{own!r} is this session's private channel; it cannot be unsubscribed",
                ref,
            )
        )
        return
    done: list[str] = []
    try:
        for channel in channels:
            slot.connection.unsubscribe(channel)
            done.append(channel)
    except InvalidArgumentError as exc:
        slot.post(error_frame("invalid_channel", str(exc), ref))
        return
    except ClosedError:
        return
    reply: dict[str, Any] = {"type": "unsubscribed", "channels": done}
    if ref is not None:
        reply["ref"] = ref
    slot.post(encode_frame(reply))


async def _run_handler(
    hub: StreamHost,
    slot: Slot | NativeSlot,
    handler: AnyMessageHandler,
    context: MessageContext,
    message: dict[str, Any],
) -> None:
    try:
        _record(hub, "message")
        result = await handler(context, message)
        if isinstance(result, dict):
            context.reply(result)
    except MessageError as exc:
        _record(hub, "error")
        slot.post(error_frame(exc.code, exc.detail, context.ref))
    except asyncio.CancelledError:
        raise
    except UnavailableError as exc:
        # Not a bug in the handler: draining, or Redis out of reach. Nothing was published.
        _record(hub, "error")
        logger.warning("handler for %r could not publish: %s", context.message_type, exc)
        slot.post(error_frame("unavailable", str(exc), context.ref))
    except Exception:
        _record(hub, "error")
        logger.exception("handler for %r failed (connection %s)", context.message_type, slot.id)
        slot.post(
            error_frame(
                "handler_error",
                f"the server failed to handle {context.message_type!r}; nothing is left"
                " pending, you may retry",
                context.ref,
            )
        )


def _record(hub: StreamHost, what: str) -> None:
    try:
        if what == "message":
            hub.manager.record_client_message()
        else:
            hub.manager.record_error()
    except SessionStreamError:  # shut down meanwhile
        pass
