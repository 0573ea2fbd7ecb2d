"""Error responses: JSON ``{"error": <code>, "detail": <text>}`` with the right status.

Limits map to HTTP statuses and WebSocket close codes here, in one place:
server full gives 503 + ``Retry-After``, per-IP / per-session caps 429 + ``Retry-After``,
and on a WebSocket, close code 1013 (try again later) with the reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from sessionstream._core import LimitExceededError


class StreamHTTPError(HTTPException):
    """An HTTP error with a machine-readable code.

    Inside sessionstream's routes it becomes ``{"error": code, "detail": text, ...}``;
    raised from a dependency in an application route, FastAPI's own handler reports it
    as ``{"detail": {"error": code, "detail": text}}`` with the same status.
    """

    def __init__(
        self,
        status_code: int,
        error: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        body = {"error": error, "detail": detail, **(extra or {})}
        super().__init__(status_code=status_code, detail=body, headers=headers)
        self.error = error
        self.text = detail
        self.body = body

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        merged = dict(self.headers or {})
        merged.update(headers or {})
        return JSONResponse(self.body, status_code=self.status_code, headers=merged)


def error_response(
    status_code: int,
    error: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "detail": detail, **extra}, status_code=status_code, headers=headers
    )


_LIMIT_TEXT = {
    "server_full": "the server is at its connection limit ({limit}); retry later",
    "per_ip": "too many connections from this address (limit {limit}); close one or retry later",
    "per_session": (
        "too many connections for this session (limit {limit}); close a tab or retry later"
    ),
}


def limit_error(exc: LimitExceededError, retry_after: int) -> StreamHTTPError:
    kind = str(exc.kind)
    status = 503 if kind == "server_full" else 429
    detail = _LIMIT_TEXT.get(kind, "connection limit reached ({limit})").format(limit=exc.limit)
    return StreamHTTPError(
        status,
        kind,
        detail,
        headers={"Retry-After": str(retry_after)},
        extra={"limit": exc.limit, "retry_after": retry_after},
    )


def shutting_down_error(retry_after: int) -> StreamHTTPError:
    return StreamHTTPError(
        503,
        "shutting_down",
        "the server is shutting down; reconnect to another instance or retry later",
        headers={"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after},
    )


class WSClose:
    """WebSocket close codes used by the stream endpoint (see docs/protocol.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutdown
    POLICY = 1008  # invalid session id, forbidden channel at connect
    INTERNAL = 1011
    TRY_AGAIN_LATER = 1013  # limits, server draining
    REPLACED = 4000  # another tab of the session took over
    SLOW_CONSUMER = 4001  # fell too far behind; reconnect and resume
    SESSION_CLEANUP = 4002  # the session was cleaned up on request
    CLOSED = 4003  # closed on request (beacon, disconnect endpoint)


_CLOSE_CODES = {
    "shutdown": WSClose.GOING_AWAY,
    "replaced": WSClose.REPLACED,
    "slow_consumer": WSClose.SLOW_CONSUMER,
    "session_cleanup": WSClose.SESSION_CLEANUP,
    "client_gone": WSClose.CLOSED,
}


def close_code_for(reason: str) -> int:
    """The WebSocket close code of a core close reason."""
    return _CLOSE_CODES.get(reason, WSClose.CLOSED)


def close_reason_text(reason: str) -> str:
    """A close reason trimmed to the 123 bytes a close frame can carry."""
    data = reason.encode()
    if len(data) <= 123:
        return reason
    return data[:120].decode(errors="ignore") + "..."
