"""Application messages on the WebSocket: handlers and the context they receive.

Besides the built-in ``subscribe`` / ``unsubscribe`` / ``ping`` messages, a client may send
any ``{"type": <name>, ...}`` for which the application registered a handler with
:meth:`StreamHub.message_handler`. Each message runs in its own task so a long reply
(an agent streaming tokens) never blocks ping/pong or the delivery of events.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sessionstream._core import SessionStore, SessionStreamError
from sessionstream.fastapi.frames import encode_frame

if TYPE_CHECKING:
    from sessionstream.fastapi.contracts import HandlerHub
    from sessionstream.fastapi.delivery import Slot
    from sessionstream.fastapi.native import NativeSlot

logger = logging.getLogger("sessionstream.messages")

MessageHandler = Callable[["MessageContext", dict[str, Any]], Awaitable[Any]]

RESERVED_TYPES = frozenset({"subscribe", "unsubscribe", "ping", "pong"})


class MessageError(Exception):
    """Raise from a handler to send the client ``{"type": "error", "error": code, "detail": ...}``.

    Any other exception is reported to the client as ``handler_error`` without its text.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class MessageContext:
    """What a message handler may do: reply to its connection, publish to its session,
    mark its connection as processing, and use the session store.
    """

    __slots__ = ("hub", "_slot", "message_type", "ref")

    def __init__(
        self, hub: HandlerHub, slot: Slot | NativeSlot, message_type: str, ref: Any
    ) -> None:
        self.hub = hub
        self._slot = slot
        self.message_type = message_type
        self.ref = ref

    @property
    def session_id(self) -> str:
        return self._slot.session_id

    @property
    def connection_id(self) -> int:
        return self._slot.id

    @property
    def store(self) -> SessionStore:
        return self.hub.store

    @property
    def connected(self) -> bool:
        """False once the client of this connection went away."""
        return not (self._slot.gone or self._slot.abort or self._slot.connection.closed)

    def reply(self, message: dict[str, Any]) -> None:
        """Send one object to this connection only (not through history, not resumable).

        ``ref`` of the triggering message is added when the object has none.
        """
        if self.ref is not None and "ref" not in message:
            message = {**message, "ref": self.ref}
        self._slot.post(encode_frame(message))

    def send_personal(self, data: Any, event: str = "message") -> str:
        """Publish to this session's private channel: every tab of the session receives it,
        it is kept in history and resumable. Returns the event id."""
        return self.hub.send_personal(self.session_id, data, event=event)

    @contextlib.asynccontextmanager
    async def processing(self) -> AsyncIterator[None]:
        """Mark this connection as busy for the duration (seed 004).

        With policy ``swap_after_processing`` a tab opened meanwhile is usable at once, and
        this connection is closed as ``replaced`` only after the block ends. The mark is
        always removed, also when the block raises.
        """
        manager = self.hub.manager
        marked = False
        try:
            manager.mark_processing(self.connection_id)
            marked = True
        except SessionStreamError:
            # Closed before the work began: the work still runs for the session.
            pass
        try:
            yield
        finally:
            if marked:
                try:
                    manager.unmark_processing(self.connection_id)
                except SessionStreamError:  # pragma: no cover - unmark tolerates closed ids
                    logger.debug("unmark_processing(%s) failed", self.connection_id)
