"""Connection logs as JSON lines, with ``StreamConfig(log_format="json")``.

One line per connection event, on the ``sessionstream.connections`` logger::

    {"ts": "2026-12-02T10:00:00.123Z", "level": "info", "event": "closed",
     "session": "h:3f1c0e5a9b2d4c61", "connection": 17, "reason": "client_gone"}

``event`` is ``opened``, ``closed`` (with the close ``reason``), ``refused`` (with
``transport``, HTTP ``status`` or WebSocket ``code``, and ``reason``), or a tab event of
the core (``replaced``, ``swapped``, ``standby``, ``promoted``, ``slow_consumer``, with
``other_connection`` where there is one). ``session`` is the digest ``/health`` shows
(``h:`` + 16 hex digits of SHA-256), never the id: a session id is a bearer secret and log
lines travel far. Opens and closes come from the core's lifecycle queue, so natively
delivered streams are logged like the others; refusals are logged where the routes
refuse. With the default ``log_format="text"`` nothing is logged per connection.

If the logger has no handler of its own, one writing the bare JSON line to stderr is
installed (and the logger stops propagating), so the lines stay parseable whatever the
server's log format; configure the logger yourself to send them elsewhere.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from sessionstream.session_ids import session_key

if TYPE_CHECKING:
    from sessionstream._core import LifecycleEvent
    from sessionstream.fastapi.contracts import Configured, LoggedHub
    from sessionstream.fastapi.errors import StreamHTTPError
    from sessionstream.fastapi.session import Transport

LOGGER_NAME = "sessionstream.connections"
logger = logging.getLogger(LOGGER_NAME)

# Refusals are logged by the routes, which know the transport and the answer; the core's
# "rejected" event for the same refusal would be a second line.
_LIFECYCLE_EVENTS = {
    "connected": "opened",
    "disconnected": "closed",
    "replaced": "replaced",
    "swapped": "swapped",
    "standby": "standby",
    "promoted": "promoted",
    "slow_consumer": "slow_consumer",
}


class _BareMessage(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def _enabled(hub: Configured) -> bool:
    return hub.config.log_format == "json"


def _emit(fields: dict[str, Any]) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    line = {"ts": stamp, "level": "info", **{k: v for k, v in fields.items() if v is not None}}
    logger.info("%s", json.dumps(line, ensure_ascii=False, separators=(",", ":")))


def attach(hub: LoggedHub) -> None:
    """Log the hub's connection events as JSON lines when its config asks for it."""
    if not _enabled(hub):
        return
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_BareMessage())
        logger.addHandler(handler)
        logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)

    def on_event(event: LifecycleEvent) -> None:
        name = _LIFECYCLE_EVENTS.get(event.kind)
        if name is None:
            return
        _emit(
            {
                "event": name,
                "session": session_key(event.session_id, "hash"),
                "connection": event.connection_id,
                "other_connection": event.other_connection_id or None,
                "reason": event.detail or None,
            }
        )

    hub.on_lifecycle(on_event)


def refused(
    hub: Configured,
    transport: str,
    exc: StreamHTTPError | None,
    source: HTTPConnection | str | None,
    *,
    error: str | None = None,
    code: int | None = None,
) -> None:
    """Log a refused stream: ``exc`` is the route's error (or ``error`` names the cause),
    ``source`` the request (its session is read again, if valid) or the session id."""
    if not _enabled(hub):
        return
    session_id = source if isinstance(source, str) else _session_of(hub, source)
    _emit(
        {
            "event": "refused",
            "transport": transport,
            "session": session_key(session_id, "hash") if session_id else None,
            "status": exc.status_code if exc is not None and code is None else None,
            "code": code,
            "reason": exc.error if exc is not None else error,
        }
    )


def _session_of(hub: Configured, connection: HTTPConnection | None) -> str | None:
    if connection is None:
        return None
    from sessionstream.fastapi.session import session_from

    kind: Transport = "websocket" if connection.scope.get("type") == "websocket" else "sse"
    try:
        session = session_from(connection, hub.config, kind)
    except Exception:  # the invalid id is what was refused: nothing to name
        return None
    # A generated id was never the client's: nothing to correlate with.
    return None if session.generated else session.id
