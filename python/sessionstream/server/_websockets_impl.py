"""``WebSocketsSansIOHandoffProtocol``: uvicorn's websockets-sansio protocol with handoff."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from sessionstream.server._detach import (
    DRAIN_TIMEOUT,
    HandoffScopeMixin,
    dup_socket,
    tls_refusal,
    wait_until_flushed,
)
from sessionstream.server.handoff import DetachedSocket, HandoffError

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent


class WebSocketHandoff:
    """The ``sessionstream.handoff`` extension of one WebSocket handshake."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOHandoffProtocol) -> None:
        self._protocol = protocol

    def __repr__(self) -> str:
        return f"<WebSocketHandoff via {type(self._protocol).__name__}>"

    def unavailable_reason(self) -> str | None:
        return self._protocol._handoff_refusal()

    async def detach(self) -> DetachedSocket:
        return await self._protocol._handoff_detach()


# HandoffScopeMixin makes uvicorn's scope attribute a property, on purpose.
class WebSocketsSansIOHandoffProtocol(HandoffScopeMixin, WebSocketsSansIOProtocol):  # type: ignore[misc]
    """uvicorn's websockets-sansio protocol; its scopes carry ``sessionstream.handoff``.

    The app detaches *instead of* accepting: the new owner of the socket writes the
    ``101`` response. Bytes that arrive between the handshake request and the app's
    answer are held unparsed (a client must wait for the ``101``, so normally there
    are none): ``detach()`` hands them over, ``websocket.accept`` parses them then.

    This class never negotiates permessage-deflate, whatever ``ws_per_message_deflate``
    says: a connection's compression state lives in the process that negotiated it, and
    a handed-off socket must not depend on Python-side state. Connections the app
    accepts through ASGI are uncompressed too, so every client sees the same thing.
    """

    handoff_drain_timeout: float = DRAIN_TIMEOUT

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn.available_extensions = None
        self._handoff_early = bytearray()
        self._handoff_early_paused = False
        self._handoff_detached = False

    def _new_handoff(self, scope: dict[str, Any]) -> WebSocketHandoff:
        return WebSocketHandoff(self)

    # -- bytes before the app answers the handshake ---------------------------

    def _awaiting_answer(self) -> bool:
        return self.handshake_initiated and not self.handshake_complete

    def data_received(self, data: bytes) -> None:
        if self._awaiting_answer():
            self.handoff_hold_early_data(data)
            return
        super().data_received(data)

    def handoff_hold_early_data(self, data: bytes) -> None:
        """Keep ``data`` unparsed until the app accepts, refuses or detaches."""
        if not self._awaiting_answer():
            return  # uvicorn already answered the handshake (a bad request): drop them
        self._handoff_early += data
        if len(self._handoff_early) > HIGH_WATER_LIMIT and not self._handoff_early_paused:
            self._handoff_early_paused = True
            self.transport.pause_reading()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if not self.handshake_complete or not self._handoff_early:
            return
        early = bytes(self._handoff_early)
        self._handoff_early.clear()
        if self.close_sent or self.transport.is_closing():
            return  # refused: nobody reads them
        if self._handoff_early_paused:
            self._handoff_early_paused = False
            if not self.read_paused:
                self.transport.resume_reading()
        super().data_received(early)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handoff_detached:
            # uvicorn's handler would remove us from the connections a second time.
            self.disconnected = True
            self.writable.set()
            return
        super().connection_lost(exc)

    # -- handoff --------------------------------------------------------------

    def _handoff_refusal(self) -> str | None:
        reason = tls_refusal(self.transport)
        if reason is not None:
            return reason
        if self._handoff_detached:
            return "the connection was already detached"
        if self.disconnected:
            return "the client disconnected"
        if self.initial_response is not None:
            return "the app has started an HTTP denial response"
        if self.close_sent:
            return "the WebSocket was already closed or refused"
        if self.handshake_complete:
            return "the WebSocket handshake is already complete"
        if not self.handshake_initiated:
            return "no WebSocket handshake request was received"
        if self.transport.is_closing():
            return "the connection is closing"
        return None

    async def _handoff_detach(self) -> DetachedSocket:
        reason = self._handoff_refusal()
        if reason is not None:
            raise HandoffError(reason)
        await wait_until_flushed(
            self.transport,
            write_paused=not self.writable.is_set(),
            wait_writable=self.writable.wait,
            timeout=self.handoff_drain_timeout,
        )
        reason = self._handoff_refusal()
        if reason is not None:
            raise HandoffError(reason)
        fd = dup_socket(self.transport)

        self._handoff_detached = True
        self.stop_keepalive()
        self.transport.pause_reading()
        buffered = bytes(self._handoff_early)
        self._handoff_early.clear()
        # As if answered: uvicorn sends no 500 ("returned without completing
        # handshake") or 403 when the app returns without accepting.
        self.handshake_complete = True
        self.close_sent = True
        # A stray receive() ends instead of waiting forever (and holding up shutdown).
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
        self.connections.discard(self)
        # close() without shutdown() and without writing: the duplicate keeps it open.
        self.transport.close()
        # Where uvicorn would log "[accepted]".
        self.logger.info(
            '%s - "WebSocket %s" [detached]',
            get_client_addr(self.scope),
            get_path_with_query_string(self.scope),
        )
        return DetachedSocket(
            fd=fd, framing="websocket", buffered=buffered, http_version=self.scope["http_version"]
        )
