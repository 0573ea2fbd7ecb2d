"""Native delivery: the engine that owns handed-off connections, seen from the event loop.

A stream route decides a connection in Python (session, authorization, limits, response
head), detaches its socket from the server through the ``sessionstream.handoff`` ASGI
extension and gives it to the native :class:`~sessionstream._core.Engine`. From then on the
engine's threads write every frame, read what the client sends, send heartbeats and pings,
and close. Python keeps nothing per SSE connection. Per WebSocket it keeps a
:class:`NativeSlot`, so that application messages, which the engine forwards in batches
(one loop wake for many messages), reach their handlers with the same context as on the
Python path.

Threading: everything here runs on the hub's event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal

from sessionstream._core import Connection, Engine, Notifier
from sessionstream.fastapi.frames import error_frame

if TYPE_CHECKING:
    from sessionstream.config import StreamConfig

logger = logging.getLogger("sessionstream.native")

# The same key as sessionstream.server.handoff.HANDOFF_EXTENSION, repeated so that this
# layer never loads sessionstream.server (whose import checks the uvicorn version) under a
# server that does not use it; a unit test keeps the two equal.
HANDOFF_EXTENSION = "sessionstream.handoff"

Transport = Literal["sse", "websocket"]
# Client messages of one connection waiting for its reader; the engine's rate limit keeps
# this short unless a handler or the authorize hook stalls.
MAX_PENDING_MESSAGES = 256
# Handles one client text message of a natively delivered WebSocket.
MessageDispatch = Callable[[str], Coroutine[Any, Any, None]]


class NativeSlot:
    """The Python side of one natively delivered WebSocket: what message handlers use.

    Frames posted here go to the engine, which sends them before the connection's mailbox
    frames. Created when the socket is adopted, dropped when the engine reports the close.
    """

    __slots__ = (
        "connection",
        "id",
        "session_id",
        "transport",
        "gone",
        "abort",
        "handler_tasks",
        "inbox",
        "reader",
        "dispatch",
        "_engine",
    )

    def __init__(self, connection: Connection, engine: Engine, dispatch: MessageDispatch) -> None:
        self.connection = connection
        self.id: int = connection.id
        self.session_id: str = connection.session_id
        self.transport: Transport = "websocket"
        self.gone = False
        self.abort = False
        self.handler_tasks: set[asyncio.Task[None]] = set()
        # Client messages not yet dispatched, handled in order by one reader task; made
        # on the first message (an idle connection holds no queue).
        self.inbox: deque[str] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.dispatch = dispatch
        self._engine = engine

    def post(self, text: str) -> None:
        """Send a direct frame to this connection (dropped once it is gone)."""
        if self.gone or self.abort:
            return
        if not self._engine.send_text(self.id, text):
            # Unknown to the engine (closed meanwhile) or its outbox overflowed, which
            # closes it as slow_consumer: either way nothing more goes to it.
            self.gone = True

    def mark_gone(self) -> None:
        self.gone = True


class NativeDelivery:
    """One engine per hub and the WebSocket slots of the connections it owns."""

    def __init__(self, config: StreamConfig, host_notifier: Notifier) -> None:
        self.engine = Engine(
            host_notifier,
            threads=config.native_threads,
            heartbeat_interval=config.heartbeat_interval,
            send_timeout=config.send_timeout,
            max_batch_bytes=config.max_batch_bytes,
            shutdown_retry_ms=config.retry_after_seconds * 1000,
            ws_max_message_bytes=config.ws_max_message_bytes,
            ws_messages_per_second=config.ws_messages_per_second,
            ws_message_burst=config.ws_message_burst,
            ws_idle_timeout=config.ws_idle_timeout,
        )
        self.slots: dict[int, NativeSlot] = {}
        self._closed = False

    def notifier(self) -> Notifier:
        """The notifier to open a connection with when it will be handed to the engine."""
        return self.engine.next_notifier()

    def adopt_sse(
        self, fd: int, connection: Connection, *, chunked: bool, initial: bytes, buffered: bytes
    ) -> None:
        self.engine.adopt_sse(fd, connection, chunked=chunked, initial=initial, buffered=buffered)

    def adopt_websocket(
        self,
        fd: int,
        connection: Connection,
        *,
        request: bytes,
        headers: list[tuple[str, str]],
        welcome: str,
        dispatch: MessageDispatch,
    ) -> NativeSlot:
        # Registered first: the engine may report a message or the close at once.
        slot = NativeSlot(connection, self.engine, dispatch)
        self.slots[slot.id] = slot
        try:
            self.engine.adopt_websocket(
                fd, connection, request=request, headers=headers, welcome=welcome
            )
        except BaseException:
            self.slots.pop(slot.id, None)
            raise
        return slot

    def find(self, connection_id: int) -> NativeSlot | None:
        return self.slots.get(connection_id)

    def drain_inbound(self) -> None:
        """Hand the engine's batch of client messages and closes to their slots."""
        for connection_id, kind, text in self.engine.take_inbound():
            slot = self.slots.get(connection_id)
            if slot is None:
                continue
            if kind == "closed":
                del self.slots[connection_id]
                slot.mark_gone()
                continue
            if slot.inbox is None:
                slot.inbox = deque()
            if len(slot.inbox) >= MAX_PENDING_MESSAGES:
                slot.post(
                    error_frame(
                        "busy",
                        f"{len(slot.inbox)} messages of this connection wait to be handled;"
                        " message dropped",
                    )
                )
                continue
            slot.inbox.append(text)
            if slot.reader is None:
                slot.reader = asyncio.get_running_loop().create_task(self._read(slot))

    @staticmethod
    async def _read(slot: NativeSlot) -> None:
        # One reader per connection keeps its messages in order (a subscribe awaits the
        # authorize hook before the next message is looked at), as on the Python path.
        inbox = slot.inbox
        if inbox is None:
            return
        try:
            while inbox and not slot.gone:
                await slot.dispatch(inbox.popleft())
        except Exception:
            logger.exception("dispatching a message of connection %s failed", slot.id)
        finally:
            slot.reader = None
            if inbox and not slot.gone:
                slot.reader = asyncio.get_running_loop().create_task(NativeDelivery._read(slot))

    def open_connections(self) -> dict[str, int]:
        m = self.engine.metrics()
        return {"sse": int(m["open_sse"]), "websocket": int(m["open_websocket"])}

    def metrics(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.engine.metrics().items()}

    def begin_shutdown(self) -> None:
        self.engine.begin_shutdown()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (off the loop) until the engine holds no connection; False on timeout."""
        if timeout <= 0:
            return not any(self.open_connections().values())
        return await asyncio.to_thread(self.engine.wait_idle, timeout)

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        for slot in self.slots.values():
            slot.abort = True
        self.slots.clear()
        self.engine.stop()
