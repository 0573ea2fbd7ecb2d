"""Wake-ups from the native core into one asyncio event loop.

One :class:`LoopWaker` per event loop owns one native ``Notifier`` (an eventfd)
registered with ``loop.add_reader``. The core writes the eventfd only when a
connection's mailbox goes from empty to non-empty and the ready list was empty, so one
wake-up serves many connections. The reader callback wakes each ready connection's
sender once; the sender then takes all pending frames as one ``bytes`` per send. Nothing
here runs per message.

Threading: everything in this module runs on its loop's thread, except that the core
may write the eventfd from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sessionstream._core import Connection, Notifier

logger = logging.getLogger("sessionstream.delivery")

LIFECYCLE_TOKEN = 0
# Direct frames (replies and errors) one connection may have waiting for its sender.
# The client's own messages cause them, so a client that sends without reading would
# otherwise grow them without bound while the sender sits in a blocked send.
OUTBOX_MAX_FRAMES = 256
# Marked by the native engine when WebSocket client messages wait for the loop.
INBOUND_TOKEN = (1 << 64) - 1

if sys.version_info >= (3, 11):

    async def send_within(
        send: Callable[[Any], Awaitable[None]], message: Any, timeout: float
    ) -> None:
        """Await ``send(message)``; raise ``asyncio.TimeoutError`` after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            await send(message)

else:  # pragma: no cover - Python 3.10

    async def send_within(
        send: Callable[[Any], Awaitable[None]], message: Any, timeout: float
    ) -> None:
        """Await ``send(message)``; raise ``asyncio.TimeoutError`` after ``timeout`` s."""
        await asyncio.wait_for(send(message), timeout)


class Slot:
    """The Python side of one open connection: its wake-up and its sender's state.

    Owned by the request handler that opened the connection; registered with the
    loop's :class:`LoopWaker` from open until the handler's ``finally``.
    """

    __slots__ = (
        "connection",
        "id",
        "session_id",
        "transport",
        "wake",
        "gone",
        "abort",
        "heartbeat_due",
        "last_send",
        "outbox",
        "outbox_overflowed",
        "task",
        "handler_tasks",
        "opened_at",
    )

    def __init__(self, connection: Connection, transport: str) -> None:
        self.connection = connection
        self.id: int = connection.id
        self.session_id: str = connection.session_id
        self.transport = transport
        self.wake = asyncio.Event()
        # The client went away (disconnect seen by the receiver).
        self.gone = False
        # The hub gave up waiting for this connection to drain (shutdown deadline).
        self.abort = False
        self.heartbeat_due = False
        self.last_send = time.monotonic()
        # Replies addressed to this connection alone (WebSocket pong, acks, errors):
        # pre-encoded text frames, sent by the sender task before mailbox frames.
        self.outbox: deque[str] = deque()
        self.outbox_overflowed = False
        self.task: asyncio.Task[object] | None = None
        self.handler_tasks: set[asyncio.Task[None]] = set()
        self.opened_at = time.time()

    def post(self, text: str) -> None:
        """Queue a direct frame for this connection and wake its sender.

        With :data:`OUTBOX_MAX_FRAMES` frames already unsent the connection is closed
        as ``slow_consumer`` instead (its unsent direct frames are dropped; the client
        may reconnect and resume), so memory stays bounded whatever the client sends.
        """
        if self.gone or self.abort or self.outbox_overflowed:
            return
        if len(self.outbox) >= OUTBOX_MAX_FRAMES:
            self.outbox_overflowed = True
            self.outbox.clear()
            logger.warning(
                "connection %s: %d replies unsent, the client sends without reading;"
                " closed as slow_consumer",
                self.id,
                OUTBOX_MAX_FRAMES,
            )
            # The sender sees the closed mailbox once its send returns (or times out)
            # and ends the stream with the slow_consumer close frame.
            self.connection.close("slow_consumer")
            self.wake.set()
            return
        self.outbox.append(text)
        self.wake.set()

    def mark_gone(self) -> None:
        self.gone = True
        self.wake.set()


class LoopWaker:
    """Wakes the Python-delivered streams of one event loop: its notifier, their slots and
    the heartbeat ticker; each stream writes its own frames."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        heartbeat_interval: float,
        on_lifecycle: Callable[[], None],
        on_inbound: Callable[[], None] | None = None,
    ) -> None:
        self.loop = loop
        self.notifier = Notifier()
        self.slots: dict[int, Slot] = {}
        self._on_lifecycle = on_lifecycle
        self._on_inbound = on_inbound
        self._heartbeat_interval = heartbeat_interval
        self._empty = asyncio.Event()
        self._empty.set()
        self._closed = False
        self._fd = self.notifier.fileno()
        loop.add_reader(self._fd, self._on_readable)
        # Checked four times per interval, so an idle stream hears a heartbeat
        # at most 1.25 intervals after its last send.
        self._tick_period = heartbeat_interval / 4
        self._ticker: asyncio.TimerHandle | None = loop.call_later(self._tick_period, self._tick)

    def _on_readable(self) -> None:
        slots = self.slots
        for token in self.notifier.take_ready():
            if token == LIFECYCLE_TOKEN:
                try:
                    self._on_lifecycle()
                except Exception:  # a listener's bug must not stop delivery
                    logger.exception("lifecycle listener failed")
                continue
            if token == INBOUND_TOKEN:
                if self._on_inbound is not None:
                    try:
                        self._on_inbound()
                    except Exception:  # one connection's message must not stop delivery
                        logger.exception("native inbound messages failed")
                continue
            slot = slots.get(token)
            if slot is not None:
                slot.wake.set()

    def _tick(self) -> None:
        if self._closed:
            return
        due_before = time.monotonic() - self._heartbeat_interval
        for slot in self.slots.values():
            if slot.transport == "sse" and slot.last_send <= due_before and not slot.heartbeat_due:
                slot.heartbeat_due = True
                slot.wake.set()
        self._ticker = self.loop.call_later(self._tick_period, self._tick)

    def register(self, connection: Connection, transport: str) -> Slot:
        slot = Slot(connection, transport)
        slot.task = asyncio.current_task()
        self.slots[slot.id] = slot
        self._empty.clear()
        return slot

    def unregister(self, slot: Slot) -> None:
        if self.slots.get(slot.id) is slot:
            del self.slots[slot.id]
        if not self.slots:
            self._empty.set()

    def find(self, connection_id: int) -> Slot | None:
        return self.slots.get(connection_id)

    async def wait_empty(self) -> None:
        await self._empty.wait()

    def abort_all(self) -> None:
        """Tell every sender to stop now and cancel those stuck in a send."""
        for slot in list(self.slots.values()):
            slot.abort = True
            slot.wake.set()
            if slot.task is not None and not slot.task.done():
                slot.task.cancel()

    def close(self) -> None:
        """Unregister the eventfd; the notifier closes it when the last owner lets go."""
        if self._closed:
            return
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        try:
            self.loop.remove_reader(self._fd)
        except (ValueError, RuntimeError, OSError):  # loop already closed
            pass
