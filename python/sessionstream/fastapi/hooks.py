"""What an app plugs into a hub: message handlers, health sections, lifecycle listeners.

The registries only; the hub's facade methods (``message_handler``, ``add_health_section``,
``on_lifecycle``) fill them and the routes read them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable

from sessionstream._core import LifecycleEvent
from sessionstream.fastapi.contracts import HealthSection, LifecycleListener
from sessionstream.fastapi.messages import RESERVED_TYPES, MessageHandler
from sessionstream.session_ids import session_key

logger = logging.getLogger("sessionstream")


class HubHooks:
    """The app's handlers, health sections and lifecycle listeners of one hub."""

    def __init__(self) -> None:
        self._handlers: dict[str, MessageHandler] = {}
        self._health_sections: dict[str, HealthSection] = {}
        self._lifecycle_listeners: list[LifecycleListener] = []

    def add_message_handler(self, message_type: str, handler: MessageHandler) -> None:
        if message_type in RESERVED_TYPES:
            raise ValueError(
                f"message type {message_type!r} is built in; reserved: {sorted(RESERVED_TYPES)}"
            )
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"handler for {message_type!r} must be an async function")
        self._handlers[message_type] = handler

    def handler_for(self, message_type: str) -> MessageHandler | None:
        return self._handlers.get(message_type)

    @property
    def message_types(self) -> list[str]:
        return sorted(RESERVED_TYPES - {"pong"} | set(self._handlers))

    def add_health_section(self, name: str, section: HealthSection) -> None:
        self._health_sections[name] = section

    def remove_health_section(self, name: str) -> None:
        self._health_sections.pop(name, None)

    def health_sections(self) -> dict[str, HealthSection]:
        return dict(self._health_sections)

    def add_lifecycle_listener(self, listener: LifecycleListener) -> None:
        self._lifecycle_listeners.append(listener)

    def notify_lifecycle(self, events: Iterable[LifecycleEvent]) -> None:
        """Log incidents and hand every event to each listener; a failing listener is
        logged and the others still run."""
        for event in events:
            if event.kind in ("slow_consumer", "rejected"):
                logger.info(
                    "%s: connection=%s session=%s %s",
                    event.kind,
                    event.connection_id,
                    session_key(event.session_id, "hash"),
                    event.detail,
                )
            for listener in self._lifecycle_listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("lifecycle listener %r failed", listener)
