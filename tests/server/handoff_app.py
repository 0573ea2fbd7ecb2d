"""A raw ASGI app that detaches connections and writes to them from a thread.

It plays the part of the native engine: the SSE route sends ``http.response.start``
through ASGI, detaches, and writes SSE frames on the descriptor (as chunks when the
framing says so); the WebSocket route detaches before accepting and writes a ``101``
and one text frame itself. The first thing written tells the test what ``detach()``
returned. Refusals are answered through ASGI (the Python fallback) and recorded for
``GET /refusals`` (which returns and forgets them).

Query parameters: ``frames`` (SSE frames after the handoff event), ``delay`` (seconds
between the response head and ``detach()``), ``hold`` (seconds the descriptor stays
open after the frames), ``big`` (bytes of body sent through ASGI before detaching),
``early`` (detach before the response head), ``cl`` (declare a Content-Length),
``nocheck`` (skip ``unavailable_reason()``, leaving it to ``detach()`` to refuse),
``accept_first`` (WebSocket: accept through ASGI, then try to detach).
``/probe`` and ``/ws-probe`` say what the scope carried.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import select
import threading
from typing import Any
from urllib.parse import parse_qs

from sessionstream.server import HANDOFF_EXTENSION, DetachedSocket, Handoff, HandoffError
from sessionstream.server.protocols import HttpToolsHandoffProtocol

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455

REFUSALS: list[dict[str, str]] = []

Scope = dict[str, Any]


class QuickDrainHttpToolsProtocol(HttpToolsHandoffProtocol):
    """For the slow-reader tests: give up on a full write buffer after 1 s."""

    handoff_drain_timeout = 1.0


def _params(scope: Scope) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}


def _handoff(scope: Scope) -> Handoff | None:
    return scope.get("extensions", {}).get(HANDOFF_EXTENSION)


def _write_all(fd: int, data: bytes) -> None:
    # The descriptor shares the server socket's non-blocking mode.
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [], 5.0)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _describe(detached: DetachedSocket, **extra: Any) -> str:
    return json.dumps(
        {
            "framing": detached.framing,
            "buffered": detached.buffered.hex(),
            "http_version": detached.http_version,
            **extra,
        }
    )


async def _json(
    send: Any, status: int, body: Any, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# -- SSE ----------------------------------------------------------------------


def _write_sse(detached: DetachedSocket, frames: int, hold: float, second: str) -> None:
    fd = detached.fd
    try:
        blocks = [f"event: handoff\ndata: {_describe(detached, second=second)}\n\n".encode()]
        blocks += [f"id: {i}\ndata: frame {i}\n\n".encode() for i in range(frames)]
        chunked = detached.framing == "chunked"
        for block in blocks:
            _write_all(fd, _chunk(block) if chunked else block)
        if hold:
            threading.Event().wait(hold)
        if chunked:
            _write_all(fd, b"0\r\n\r\n")
    except OSError:
        pass  # the client left
    finally:
        os.close(fd)


async def sse(scope: Scope, receive: Any, send: Any) -> None:
    params = _params(scope)
    handoff = _handoff(scope)
    if handoff is None:
        await _json(send, 200, {"delivery": "python", "reason": "no extension"})
        return
    reason = None if "nocheck" in params else handoff.unavailable_reason()
    if reason is not None:
        await _json(send, 409, {"reason": reason}, ((b"x-handoff-refused", reason.encode()),))
        return
    if "early" in params:
        try:
            await handoff.detach()
        except HandoffError as exc:
            await _json(send, 409, {"reason": exc.reason})
            return
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"x-served-by", b"asgi"),
    ]
    if "cl" in params:
        headers.append((b"content-length", b"1"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if "big" in params:
        big = b": " + b"x" * int(params["big"]) + b"\n\n"
        await send({"type": "http.response.body", "body": big, "more_body": True})
    if "delay" in params:
        await asyncio.sleep(float(params["delay"]))
    try:
        detached = await handoff.detach()
    except HandoffError as exc:
        REFUSALS.append({"path": scope["path"], "reason": exc.reason})
        body = b"x" if "cl" in params else f"event: refused\ndata: {exc.reason}\n\n".encode()
        await send({"type": "http.response.body", "body": body})
        return
    try:
        await handoff.detach()
        second = "detached twice"
    except HandoffError as exc:
        second = exc.reason
    threading.Thread(
        target=_write_sse,
        args=(detached, int(params.get("frames", "3")), float(params.get("hold", "0")), second),
        daemon=True,
    ).start()


async def complete(scope: Scope, receive: Any, send: Any) -> None:
    handoff = _handoff(scope)
    assert handoff is not None
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
    try:
        await handoff.detach()
    except HandoffError as exc:
        REFUSALS.append({"path": scope["path"], "reason": exc.reason})


async def probe(scope: Scope, receive: Any, send: Any) -> None:
    handoff = _handoff(scope)
    await _json(
        send,
        200,
        {
            "extension": handoff is not None,
            "handoff": repr(handoff) if handoff is not None else None,
            "reason": handoff.unavailable_reason() if handoff is not None else None,
        },
    )


# -- WebSocket ----------------------------------------------------------------


def _raw_request(scope: Scope) -> bytes:
    """The handshake request as the native engine rebuilds it from the scope."""
    target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
    lines = [b"GET " + target + b" HTTP/" + scope["http_version"].encode()]
    lines += [name + b": " + value for name, value in scope["headers"]]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _text_frame(text: str) -> bytes:
    payload = text.encode()
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    return bytes([0x81, 126]) + len(payload).to_bytes(2, "big") + payload


def _write_ws(detached: DetachedSocket, request: bytes, hold: float) -> None:
    fd = detached.fd
    try:
        head, *header_lines = request.split(b"\r\n\r\n")[0].split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in header_lines)
        key = next(v for k, v in headers.items() if k.lower() == b"sec-websocket-key")
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        _write_all(
            fd,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n",
        )
        _write_all(fd, _text_frame(_describe(detached, request_line=head.decode())))
        if hold:
            threading.Event().wait(hold)
    except OSError:
        pass
    finally:
        os.close(fd)


async def _answer_in_python(receive: Any, send: Any, body: dict[str, Any]) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect", message
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(body)})
    await send({"type": "websocket.close", "code": 1000})


async def ws(scope: Scope, receive: Any, send: Any) -> None:
    params = _params(scope)
    handoff = _handoff(scope)
    if handoff is None:
        await _answer_in_python(receive, send, {"delivery": "python", "reason": "no extension"})
        return
    reason = handoff.unavailable_reason()
    if reason is not None:
        await _answer_in_python(receive, send, {"delivery": "python", "reason": reason})
        return
    if "accept_first" in params:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await handoff.detach()
            outcome = "detached"
        except HandoffError as exc:
            outcome = exc.reason
        await send({"type": "websocket.send", "text": json.dumps({"refused": outcome})})
        await send({"type": "websocket.close", "code": 1000})
        return
    if "delay" in params:
        await asyncio.sleep(float(params["delay"]))
    try:
        detached = await handoff.detach()
    except HandoffError as exc:
        await _answer_in_python(receive, send, {"delivery": "python", "refused": exc.reason})
        return
    threading.Thread(
        target=_write_ws,
        args=(detached, _raw_request(scope), float(params.get("hold", "0"))),
        daemon=True,
    ).start()


async def ws_echo(scope: Scope, receive: Any, send: Any) -> None:
    """Accept through ASGI and echo one text message."""
    await receive()
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": "echo:" + message["text"]})
    await send({"type": "websocket.close", "code": 1000})


async def ws_probe(scope: Scope, receive: Any, send: Any) -> None:
    """Accept through ASGI and say what the scope carried."""
    handoff = _handoff(scope)
    await receive()
    await send({"type": "websocket.accept"})
    body = {
        "extension": handoff is not None,
        "handoff": repr(handoff) if handoff is not None else None,
        "reason": handoff.unavailable_reason() if handoff is not None else None,
    }
    await send({"type": "websocket.send", "text": json.dumps(body)})
    while (await receive())["type"] != "websocket.disconnect":
        pass


# -- routing ------------------------------------------------------------------


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


HTTP_ROUTES = {"/sse": sse, "/complete": complete, "/probe": probe}
WS_ROUTES = {"/ws": ws, "/ws-echo": ws_echo, "/ws-probe": ws_probe}


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await WS_ROUTES[scope["path"]](scope, receive, send)
    elif scope["path"] in HTTP_ROUTES:
        await HTTP_ROUTES[scope["path"]](scope, receive, send)
    elif scope["path"] == "/refusals":
        await _json(send, 200, REFUSALS[:])
        REFUSALS.clear()
    else:
        await _json(send, 200 if scope["path"] == "/health" else 404, {"ok": True})
