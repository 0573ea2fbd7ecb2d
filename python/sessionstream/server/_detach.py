"""What the handoff protocol classes share: the scope hook and releasing a transport."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from sessionstream.server.handoff import HANDOFF_EXTENSION, Handoff, HandoffError

DRAIN_TIMEOUT = 5.0
"""Seconds ``detach()`` waits for the server's write buffer to empty."""

_POLL_INTERVAL = 0.005

HOLD_EARLY_DATA = "handoff_hold_early_data"
"""Method by which the HTTP classes give the WebSocket class the bytes that followed an
upgrade request in the same read (uvicorn drops them)."""


class HandoffScopeMixin:
    """Puts a handoff object into every scope the protocol builds.

    uvicorn assigns each new scope dict to ``self.scope`` before it starts the ASGI task,
    so intercepting that assignment adds the extension before any app code can run,
    wherever in uvicorn the scope is built.
    """

    _handoff_scope: Any = None

    def _new_handoff(self, scope: dict[str, Any]) -> Handoff:
        raise NotImplementedError

    @property
    def scope(self) -> Any:
        return self._handoff_scope

    @scope.setter
    def scope(self, scope: Any) -> None:
        if scope is not None:
            scope.setdefault("extensions", {})[HANDOFF_EXTENSION] = self._new_handoff(scope)
        self._handoff_scope = scope


def tls_refusal(transport: asyncio.BaseTransport) -> str | None:
    if transport.get_extra_info("sslcontext") is not None:
        return "the connection uses TLS: its bytes are records only Python's ssl layer can write"
    return None


async def wait_until_flushed(
    transport: asyncio.WriteTransport,
    *,
    write_paused: bool,
    wait_writable: Callable[[], Awaitable[Any]],
    timeout: float,
) -> None:
    """Wait until the transport has handed every written byte to the kernel.

    The descriptor's new owner writes straight to the socket, so anything still queued
    in the transport would arrive after its bytes, or never.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        if write_paused:
            # uvicorn's own flow control is what wakes us when a paused transport drains.
            await asyncio.wait_for(wait_writable(), timeout)
        while transport.get_write_buffer_size() > 0 and not transport.is_closing():
            if loop.time() >= deadline:
                raise asyncio.TimeoutError
            await asyncio.sleep(_POLL_INTERVAL)
    except asyncio.TimeoutError:
        raise HandoffError(
            f"the client did not read what was already sent within {timeout:g} s"
        ) from None


def dup_socket(transport: asyncio.BaseTransport) -> int:
    """A duplicate of the transport's socket descriptor (uvloop gives a pseudo-socket)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        raise HandoffError("the transport exposes no socket")
    try:
        return os.dup(sock.fileno())
    except (OSError, ValueError) as exc:
        raise HandoffError(f"cannot duplicate the socket: {exc}") from exc


def pass_upgrade_tail(transport: asyncio.BaseTransport, tail: bytes) -> None:
    """Give the bytes that followed an upgrade request to a handoff WebSocket protocol."""
    if not tail:
        return
    hold = getattr(transport.get_protocol(), HOLD_EARLY_DATA, None)
    if hold is not None:
        hold(tail)
