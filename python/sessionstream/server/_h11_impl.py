"""``H11HandoffProtocol``: uvicorn's h11 protocol with socket handoff."""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from sessionstream.server._detach import pass_upgrade_tail
from sessionstream.server._http import HttpFraming, HttpHandoffMixin
from sessionstream.server.handoff import HandoffError

try:
    # h11 keeps the body framing it chose only in its writer; the class says which.
    from h11._writers import ChunkedWriter, ContentLengthWriter, Http10Writer
except ImportError:  # pragma: no cover - another h11 layout: refuse rather than guess
    ChunkedWriter = ContentLengthWriter = Http10Writer = None  # type: ignore[assignment, misc]


# HandoffScopeMixin makes uvicorn's scope attribute a property, on purpose.
class H11HandoffProtocol(HttpHandoffMixin, H11Protocol):  # type: ignore[misc]
    """uvicorn's h11 HTTP/1.1 protocol; its scopes carry ``sessionstream.handoff``.

    h11 parses nothing after a request until the response completes: whatever the
    client sent after it (pipelined requests included) is in ``trailing_data`` and is
    handed over byte for byte. A response without Content-Length is chunked to an
    HTTP/1.1 client and close-delimited to an HTTP/1.0 one.
    """

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        tail = self.conn.trailing_data[0]
        super().handle_websocket_upgrade(event)
        pass_upgrade_tail(self.transport, tail)

    def _handoff_framing(self, cycle: RequestResponseCycle) -> HttpFraming:
        writer = getattr(self.conn, "_writer", None)
        if ChunkedWriter is not None and isinstance(writer, ChunkedWriter):
            return "chunked"
        if Http10Writer is not None and isinstance(writer, Http10Writer):
            return "close_delimited"
        if ContentLengthWriter is not None and isinstance(writer, ContentLengthWriter):
            raise HandoffError("the response has a fixed length (Content-Length, 204 or 304)")
        raise HandoffError("cannot tell how this h11 version frames the response")

    def _handoff_take_buffered(self) -> bytes:
        return self.conn.trailing_data[0]
