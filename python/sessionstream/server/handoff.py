"""The ``sessionstream.handoff`` ASGI scope extension: the types an app sees.

This module imports neither uvicorn nor anything else of ``sessionstream.server``, so
:mod:`sessionstream.fastapi` can use it whatever server runs the app.

An HTTP or WebSocket scope served by one of the protocol classes of
:mod:`sessionstream.server.protocols` carries a :class:`Handoff` under
``scope["extensions"][HANDOFF_EXTENSION]``. Its ``detach()`` takes the connection away
from the server and returns a :class:`DetachedSocket`: a duplicate of the socket's file
descriptor that the caller now owns and writes to directly.

HTTP (SSE): send ``http.response.start`` through ASGI first (so middleware adds its
headers), then ``await handoff.detach()``; write the body in ``framing`` and close the
descriptor at the end. WebSocket: ``await handoff.detach()`` *instead of* sending
``websocket.accept``; the new owner writes the ``101`` response itself. In both cases the
ASGI app then returns without calling ``receive()`` or ``send()`` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["HANDOFF_EXTENSION", "DetachedSocket", "Framing", "Handoff", "HandoffError"]

HANDOFF_EXTENSION = "sessionstream.handoff"
"""Key of the extension in ``scope["extensions"]``."""

Framing = Literal["chunked", "close_delimited", "websocket"]


class HandoffError(RuntimeError):
    """The connection cannot be handed off; ``.reason`` is a short text.

    The connection is left as it was: the app can still answer through ASGI.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DetachedSocket:
    """A connection taken away from the server.

    ``fd`` is a ``dup()`` of the connection's socket: the caller owns it and must close
    it. It shares the socket's open file description with the descriptor the server
    closed, so it is non-blocking, and it is not inherited by child processes. The
    server has written everything the app sent through ASGI (HTTP) or nothing at all
    (WebSocket), will write nothing more, and never shut the socket down.
    """

    fd: int
    framing: Framing
    """``chunked``: the response head announced ``Transfer-Encoding: chunked``, so the
    body is written as chunks and ends with ``0\\r\\n\\r\\n``; ``close_delimited``: the
    body ends when the socket is closed; ``websocket``: no response was sent yet, the
    ``101`` is the new owner's to write."""
    buffered: bytes
    """Bytes the client sent after its request that the server read and did not
    consume, in order; the new owner reads the socket after them."""
    http_version: str
    """The request's HTTP version: ``"1.1"`` or ``"1.0"``."""


@runtime_checkable
class Handoff(Protocol):
    """What ``scope["extensions"][HANDOFF_EXTENSION]`` provides."""

    def unavailable_reason(self) -> str | None:
        """Why ``detach()`` cannot work on this connection, or ``None`` if it can.

        Checked before the app opens a stream. It reports what the app cannot change
        (TLS, a ``HEAD`` request, a queued pipelined request, a closed connection,
        ...); ``detach()`` can still refuse for what the app has yet to do (start the
        HTTP response, read the request body) or for what happens meanwhile (the client
        leaves).
        """
        ...

    async def detach(self) -> DetachedSocket:
        """Take the connection away from the server; raises :class:`HandoffError`."""
        ...
