"""``HttpToolsHandoffProtocol``: uvicorn's httptools protocol with socket handoff."""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from sessionstream.server._detach import pass_upgrade_tail
from sessionstream.server._http import HttpFraming, HttpHandoffMixin
from sessionstream.server.handoff import HandoffError

# h11's default bound on an incomplete request head; httptools has none of its own.
DEFAULT_MAX_HEAD_BYTES = 16 * 1024


class _HeadTooLarge(Exception):
    pass


# HandoffScopeMixin makes uvicorn's scope attribute a property, on purpose.
class HttpToolsHandoffProtocol(HttpHandoffMixin, HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools HTTP/1.1 protocol; its scopes carry ``sessionstream.handoff``.

    httptools parses every byte it is given and keeps none of them raw. So that bytes
    a client sends after a request can still be handed over exactly, this class holds
    them unparsed while that request's response is in progress, and parses them when
    the response completes (which is also when uvicorn would start on them). Bytes that
    arrived in the same read as the end of the request were parsed already: ``detach()``
    then refuses when they began a further request. After a ``Connection: close``
    request httptools discards such bytes unseen, as the server must.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._handoff_held = bytearray()
        # One knob for both parsers: uvicorn's --h11-max-incomplete-event-size.
        self._max_head_bytes = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if (
            cycle is not None
            and not cycle.more_body
            and not cycle.response_complete
            and not self._handoff_detached
        ):
            self._handoff_held += data
            if len(self._handoff_held) > HIGH_WATER_LIMIT:
                self.flow.pause_reading()
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        # HttpToolsProtocol.data_received of uvicorn 0.54.0, except that it keeps the
        # bytes after an upgrade request, which uvicorn drops.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._send_431()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade as exc:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                pass_upgrade_tail(self.transport, data[exc.args[0] :])
            else:
                self._unsupported_upgrade_warning()

    # A request head is bounded: a client cannot make the server hold megabytes of
    # headers per connection, across thousands of connections.
    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._max_head_bytes:
            raise _HeadTooLarge

    def _send_431(self) -> None:
        msg = f"Request head larger than {self._max_head_bytes} bytes."
        self.logger.warning(msg)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(msg)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + msg.encode()
        )
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._handoff_held:
            return
        held = bytes(self._handoff_held)
        self._handoff_held.clear()
        if not self.transport.is_closing():
            self._feed(held)

    def _handoff_parsed_further(self, scope: dict[str, Any]) -> str | None:
        if self.pipeline:
            return "a pipelined request is queued"
        if self.scope is not scope:
            return "uvicorn has parsed bytes of a further request"
        return None

    def _handoff_framing(self, cycle: RequestResponseCycle) -> HttpFraming:
        # uvicorn's httptools cycle frames every body with a length, chunks or nothing.
        if cycle.chunked_encoding:
            return "chunked"
        if cycle.chunked_encoding is False:
            raise HandoffError("the response head declares a Content-Length")
        raise HandoffError("the response has no body (204 or 304)")

    def _handoff_take_buffered(self) -> bytes:
        held = bytes(self._handoff_held)
        self._handoff_held.clear()
        return held
