"""Which pages may use the streams and session routes: the one place origins are decided.

A browser sends the session cookie with a WebSocket handshake, an ``EventSource`` with
credentials or a cross-site ``POST`` whatever site the page comes from. WebSockets have
no CORS at all, and CORS only stops a page from *reading* a response, not the request
from having its effect (closing a connection, cleaning up a session). So every such
request whose ``Origin`` is neither the server's own nor listed is refused with 403
before anything happens (cross-site WebSocket hijacking, CSRF). Browsers send ``Origin``
on every cross-origin request; clients that send none (servers, scripts) carry no ambient
cookie of a user and are allowed.

Listed CORS origins (``cors_allowed_origins``) get ``Access-Control-Allow-Origin`` (their
own origin echoed, never ``*``), ``Access-Control-Allow-Credentials: true`` and
``Vary: Origin``, and answers to preflight ``OPTIONS`` requests.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

Verdict = Literal["none", "same", "listed", "refused"]

PREFLIGHT_MAX_AGE = 600


@functools.lru_cache(maxsize=64)
def parse_origins(text: str) -> frozenset[str]:
    """``"https://a.example, https://b.example:8443"`` as normalised origins; ``*`` kept."""
    return frozenset(_normalise(o) if o != "*" else "*" for o in _split(text))


def classify_origin(origin: str | None, host: str | None, allowed: frozenset[str]) -> Verdict:
    """``none`` (no Origin), ``same`` (the server's own: its Host), ``listed`` (in
    ``allowed``, or ``*`` in it) or ``refused``."""
    if origin is None:
        return "none"
    normalised = _normalise(origin)
    netloc = urlsplit(normalised).netloc
    if host and netloc == host.strip().lower():
        return "same"
    if "*" in allowed or normalised in allowed:
        return "listed"
    return "refused"


def origin_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """Allowed: no Origin, the server's own origin (its Host), or one listed (``*``: any)."""
    return classify_origin(origin, host, allowed) != "refused"


def shown_origin(origin: str | None) -> str:
    """An Origin as it may appear in a log line or an error text (shortened)."""
    return (origin or "")[:200]


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _normalise(origin: str) -> str:
    parts = urlsplit(origin.strip().lower())
    return f"{parts.scheme}://{parts.netloc}"


def _forbidden(origin: str) -> tuple[Message, Message]:
    body = json.dumps(
        {
            "error": "forbidden_origin",
            "detail": f"origin {shown_origin(origin)!r} may not use this route: add it to"
            " StreamConfig.cors_allowed_origins to allow pages of that site",
        },
        separators=(",", ":"),
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 403,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"vary", b"Origin"),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


def forbidden_origin_response(origin: str) -> Response:
    start, body = _forbidden(origin)
    return Response(
        body["body"], status_code=403, headers={"Vary": "Origin"}, media_type="application/json"
    )


Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def origin_checked(allowed: frozenset[str]) -> Callable[[Endpoint], Endpoint]:
    """Decorate an HTTP route taking ``request``: a foreign origin gets 403 before the
    route runs, a listed one the CORS headers on whatever the route returns (also on a
    response head the native handoff sends, which is the response's own)."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def checked(*args: Any, **kwargs: Any) -> Response:
            request: Request = kwargs["request"]
            origin = request.headers.get("origin")
            verdict = classify_origin(origin, request.headers.get("host"), allowed)
            if verdict == "refused":
                return forbidden_origin_response(origin or "")
            response = await endpoint(*args, **kwargs)
            if verdict == "listed" and origin is not None:
                response.raw_headers.extend(cors_headers(origin))
            return response

        return checked  # type: ignore[return-value]

    return decorate


class Preflight:
    """The ``OPTIONS`` answer of a route: 204 with the CORS grant for a listed origin,
    403 for any other."""

    def __init__(
        self, allowed: frozenset[str], methods: Iterable[str], allow_headers: Iterable[str]
    ) -> None:
        self.allowed = allowed
        self.methods = ", ".join(methods).encode()
        self.allow_headers = ", ".join(allow_headers).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or classify_origin(origin, headers.get("host"), self.allowed) != "listed":
            for message in _forbidden(origin or ""):
                await send(message)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    *cors_headers(origin),
                    (b"access-control-allow-methods", self.methods),
                    (b"access-control-allow-headers", self.allow_headers),
                    (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
