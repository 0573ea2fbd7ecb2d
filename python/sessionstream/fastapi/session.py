"""Browser session ids: where they come from, how they are validated and remembered.

A request names its session with the ``X-Session-ID`` header or the session cookie (an
HttpOnly cookie, which browsers send with ``EventSource``, WebSocket handshakes,
``fetch`` and beacons of the same site by themselves). A present but malformed id is
refused (HTTP 400 / WebSocket close 1008), never cleaned up into something else. When no
id is given, one is generated from a secure random source and set as a cookie.

A session id is a bearer secret: whoever presents it receives that session's private
channel ``session:<id>``. It is never accepted as the name of another session's channel,
and by default never from the URL: URLs end up in access logs, the server's and every
proxy's. ``StreamConfig.session_query_enabled`` accepts ``?session_id=`` (between the
header and the cookie) for legacy clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request, Response
from starlette.datastructures import Headers, QueryParams
from starlette.requests import HTTPConnection

from sessionstream._core import generate_session_id, is_valid_session_id
from sessionstream.config import StreamConfig
from sessionstream.fastapi.errors import StreamHTTPError

Transport = Literal["sse", "websocket", "http"]
Source = Literal["header", "query", "cookie", "generated"]


@dataclass(frozen=True, slots=True)
class StreamSession:
    """Who is asking: passed to the ``authorize(session, channel)`` hook."""

    id: str
    """The browser session id (validated)."""
    source: Source
    """Where the id came from; ``generated`` when the server just made it."""
    ip: str
    """The client address as the server sees it (after any proxy-header handling)."""
    transport: Transport
    headers: Headers
    """Request headers, for hooks that also check credentials."""

    @property
    def generated(self) -> bool:
        return self.source == "generated"


class InvalidSessionIdError(StreamHTTPError):
    def __init__(self, source: str, value: str) -> None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        super().__init__(
            400,
            "invalid_session_id",
            f"session id {shown!r} from the {source} is invalid: use 8-128 characters of"
            " A-Z a-z 0-9 - _ (or send none and one is generated)",
        )


class SessionIdInURLError(InvalidSessionIdError):
    def __init__(self, config: StreamConfig) -> None:
        StreamHTTPError.__init__(
            self,
            400,
            "session_id_in_url",
            f"send the session id in the {config.session_header} header or the cookie, not"
            f" in the URL (?{config.session_query}=): URLs are written to access logs;"
            " StreamConfig.session_query_enabled accepts it from legacy clients",
        )


def resolve_session_id(
    headers: Headers, query: QueryParams, cookies: dict[str, str], config: StreamConfig
) -> tuple[str, Source]:
    """Return ``(session_id, source)``; raise :class:`InvalidSessionIdError` for a bad id
    (:class:`SessionIdInURLError` for one in the query while that is not enabled)."""
    queried = query.get(config.session_query)
    if queried is not None and not config.session_query_enabled:
        raise SessionIdInURLError(config)
    candidates: tuple[tuple[Source, str | None], ...] = (
        ("header", headers.get(config.session_header)),
        ("query", queried),
        ("cookie", cookies.get(config.session_cookie)),
    )
    for source, value in candidates:
        if value is None or value == "":
            continue
        if not is_valid_session_id(value):
            raise InvalidSessionIdError(source, value)
        return value, source
    return generate_session_id(), "generated"


def client_ip(connection: HTTPConnection) -> str:
    client = connection.client
    return client.host if client is not None else ""


def session_from(
    connection: HTTPConnection, config: StreamConfig, transport: Transport
) -> StreamSession:
    session_id, source = resolve_session_id(
        connection.headers, connection.query_params, connection.cookies, config
    )
    return StreamSession(
        id=session_id,
        source=source,
        ip=client_ip(connection),
        transport=transport,
        headers=connection.headers,
    )


def cookie_header(session_id: str, config: StreamConfig) -> tuple[bytes, bytes]:
    """The ``Set-Cookie`` header that remembers a generated session id."""
    response = Response()
    set_session_cookie(response, session_id, config)
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            return name, value
    raise AssertionError("set_cookie produced no header")  # pragma: no cover


def set_session_cookie(response: Response, session_id: str, config: StreamConfig) -> None:
    response.set_cookie(
        config.session_cookie,
        session_id,
        max_age=config.cookie_max_age or None,
        path="/",
        secure=config.cookie_secure,
        httponly=True,  # scripts learn the id from GET {prefix}/session, not the cookie
        samesite=config.cookie_samesite,
    )


def running_hub(connection: HTTPConnection) -> Any:
    """The hub serving this app (``get_stream_hub`` types it as a ``StreamHub``).

    Found in the lifespan state (``request.state.sessionstream_hub``) or on
    ``app.state``; both are set when the hub's router is included and the app starts.
    """
    hub = getattr(connection.state, "sessionstream_hub", None)
    if hub is None:
        hub = getattr(connection.app.state, "sessionstream_hub", None)
    if hub is None:
        raise RuntimeError(
            "no StreamHub is running for this app: include hub.router in the app"
            " (app.include_router(hub.router)) and start it with its lifespan"
        )
    return hub


def get_stream_session(request: Request, response: Response) -> StreamSession:
    """Dependency: the caller's :class:`StreamSession`; sets the cookie when generated."""
    hub = running_hub(request)
    session = session_from(request, hub.config, "http")
    if session.generated:
        set_session_cookie(response, session.id, hub.config)
    return session


def get_session_id(request: Request, response: Response) -> str:
    """Dependency: the caller's browser session id (generated and set as a cookie if absent).

    Use it in your own routes::

        @app.post("/api/chat")
        async def chat(session_id: str = Depends(get_session_id)): ...
    """
    return get_stream_session(request, response).id
