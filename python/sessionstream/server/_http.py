"""HTTP handoff shared by the httptools and h11 protocol classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from sessionstream.server._detach import (
    DRAIN_TIMEOUT,
    HandoffScopeMixin,
    dup_socket,
    tls_refusal,
    wait_until_flushed,
)
from sessionstream.server.handoff import DetachedSocket, HandoffError

if TYPE_CHECKING:
    import asyncio

    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.server import ServerState

HttpFraming = Literal["chunked", "close_delimited"]


class HttpHandoff:
    """The ``sessionstream.handoff`` extension of one HTTP request."""

    __slots__ = ("_protocol", "_scope")

    def __init__(self, protocol: HttpHandoffMixin, scope: dict[str, Any]) -> None:
        self._protocol = protocol
        self._scope = scope

    def __repr__(self) -> str:
        return f"<HttpHandoff via {type(self._protocol).__name__}>"

    def unavailable_reason(self) -> str | None:
        return self._protocol._handoff_refusal(self._scope, detaching=False)

    async def detach(self) -> DetachedSocket:
        return await self._protocol._handoff_detach(self._scope)


class HttpHandoffMixin(HandoffScopeMixin):
    """``detach()`` for uvicorn's HTTP/1.1 protocol classes; mixed in before them.

    The implementation classes say which bytes their parser keeps, how the response is
    framed and whether the parser has already consumed bytes of a further request.
    """

    handoff_drain_timeout: float = DRAIN_TIMEOUT
    _handoff_detached = False

    if TYPE_CHECKING:
        transport: asyncio.Transport
        flow: FlowControl
        connections: set[Any]
        server_state: ServerState
        cycle: Any

    def _new_handoff(self, scope: dict[str, Any]) -> HttpHandoff:
        return HttpHandoff(self, scope)

    # -- implementation hooks -------------------------------------------------

    def _handoff_parsed_further(self, scope: dict[str, Any]) -> str | None:
        """Why bytes after this request can no longer be handed over, if they can't."""
        return None

    def _handoff_framing(self, cycle: Any) -> HttpFraming:
        """How the started response frames its body; raises HandoffError."""
        raise NotImplementedError

    def _handoff_take_buffered(self) -> bytes:
        """The bytes read after the request and not consumed."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------

    def _handoff_refusal(self, scope: dict[str, Any], *, detaching: bool) -> str | None:
        reason = tls_refusal(self.transport)
        if reason is not None:
            return reason
        if self._handoff_detached:
            return "the connection was already detached"
        if scope.get("method") == "HEAD":
            return "a HEAD response has no body"
        reason = self._handoff_parsed_further(scope)
        if reason is not None:
            return reason
        cycle = self.cycle
        if cycle is None or cycle.scope is not scope:
            return "the request is not the one uvicorn is answering"
        if cycle.disconnected:
            return "the client disconnected"
        if cycle.response_complete:
            return "the response is already complete"
        if self.transport.is_closing():
            return "the connection is closing"
        if not detaching:
            return None
        # What the app itself still has to do before detaching.
        if not cycle.response_started:
            return "the response has not started: send http.response.start first"
        if cycle.more_body:
            return "the request body is not fully received"
        if cycle.body:
            return "the app has not read the whole request body"
        return None

    async def _handoff_detach(self, scope: dict[str, Any]) -> DetachedSocket:
        reason = self._handoff_refusal(scope, detaching=True)
        if reason is not None:
            raise HandoffError(reason)
        cycle = self.cycle
        framing = self._handoff_framing(cycle)
        await wait_until_flushed(
            self.transport,
            write_paused=self.flow.write_paused,
            wait_writable=self.flow.drain,
            timeout=self.handoff_drain_timeout,
        )
        # Other callbacks ran while we waited (the client may have left): look again.
        reason = self._handoff_refusal(scope, detaching=True)
        if reason is not None:
            raise HandoffError(reason)
        fd = dup_socket(self.transport)

        # Nothing below can fail or wait, so uvicorn sees the connection as it was until
        # here and as finished from here on.
        self._handoff_detached = True
        self.flow.pause_reading()
        buffered = self._handoff_take_buffered()
        # A complete response: uvicorn neither logs "returned without completing
        # response", nor writes a terminating chunk, nor keeps the connection alive;
        # receive() now returns http.disconnect at once.
        cycle.response_complete = True
        cycle.keep_alive = False
        cycle.message_event.set()
        # Forgotten now, not when connection_lost runs: graceful shutdown and
        # --limit-concurrency must not count a connection uvicorn no longer serves.
        self.connections.discard(self)
        self.server_state.total_requests += 1
        # close() without shutdown(): the duplicate keeps the TCP connection open.
        self.transport.close()
        return DetachedSocket(
            fd=fd, framing=framing, buffered=buffered, http_version=scope["http_version"]
        )
