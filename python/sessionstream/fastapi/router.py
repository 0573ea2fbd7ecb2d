"""The hub's ``APIRouter``: stream routes under the prefix, session routes, health, metrics.

Routes (default prefix ``/stream``):

=======  ===============================  ==============================================
GET      ``/stream/sse``                  SSE stream (``?channel=A&channel=B``)
WS       ``/stream/ws``                   WebSocket stream and JSON protocol
GET      ``/stream/session``              the caller's session id and connections
POST     ``/stream/session/disconnect``   drop one channel from the caller's session
POST     ``/stream/session/cleanup``      close everything of the caller's session
POST     ``/stream/connections/{id}/close``  close one of the caller's connections (beacon)
GET      ``/health``                      JSON health
GET      ``/metrics``                     Prometheus text
=======  ===============================  ==============================================

The router carries the hub's lifespan, which FastAPI merges into the app's on
``app.include_router(hub.router)``.

The SSE and session routes pass the origin check of :mod:`sessionstream.fastapi.origin`
(403 for a foreign ``Origin``; CORS headers and ``OPTIONS`` preflights for the origins in
``cors_allowed_origins``); the WebSocket route checks origins itself, before the handshake.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, cast

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from sessionstream._core import InvalidArgumentError
from sessionstream.fastapi import logs as connection_logs
from sessionstream.fastapi.errors import StreamHTTPError, error_response
from sessionstream.fastapi.health import (
    HealthCursors,
    health_document,
    make_registry,
    render_metrics,
    session_page,
)
from sessionstream.fastapi.origin import Preflight, origin_checked, parse_origins
from sessionstream.fastapi.session import StreamSession, session_from, set_session_cookie
from sessionstream.fastapi.sse import EventStreamResponse
from sessionstream.fastapi.websocket import websocket_endpoint

if TYPE_CHECKING:
    from sessionstream.fastapi.contracts import RoutedHub

TAGS: list[str | object] = ["sessionstream"]


def build_router(hub: RoutedHub) -> APIRouter:
    cfg = hub.config
    prefix = cfg.prefix
    router = APIRouter(lifespan=hub.lifespan, tags=TAGS)  # type: ignore[arg-type]
    registry = make_registry(hub)
    # Foreign origins are refused before a route runs; listed ones get CORS headers.
    checked = origin_checked(parse_origins(cfg.cors_allowed_origins))

    def session_json(
        session: StreamSession, body: Mapping[str, object], status: int = 200
    ) -> JSONResponse:
        response = JSONResponse(body, status_code=status)
        if session.generated:
            set_session_cookie(response, session.id, cfg)
        return response

    @router.get(
        prefix + "/sse",
        summary="Server-Sent Events stream",
        response_class=EventStreamResponse,
        responses={
            200: {"content": {"text/event-stream": {}}},
            400: {"description": "invalid session id or channel"},
            403: {"description": "channel not authorized"},
            429: {"description": "per-IP or per-session limit"},
            503: {"description": "server full or shutting down"},
        },
    )
    @checked
    async def sse_stream(
        request: Request,
        channel: Annotated[list[str], Query(description="channel to subscribe; repeatable")] = [],  # noqa: B006
        last_event_id: Annotated[
            str | None, Query(description="resume after this event id")
        ] = None,
        last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> Response:
        """Stream the requested channels plus the session's private channel.

        Resumes from the ``Last-Event-ID`` header (sent by the browser on its own
        reconnects) or the ``last_event_id`` query parameter; the header wins because it
        is the newer of the two when a browser reconnects a URL that carries the query.
        """
        try:
            session = session_from(request, cfg, "sse")
            hub.rate_limits.check_connect(session)
            channels = await hub.authorize_channels(session, channel)
        except StreamHTTPError as exc:
            connection_logs.refused(hub, "sse", exc, request)
            return exc.response()
        resume_from = last_event_id_header or last_event_id or None
        return EventStreamResponse(hub, session, channels, resume_from)

    @router.websocket(prefix + "/ws")
    async def ws_stream(websocket: WebSocket) -> None:
        await websocket_endpoint(websocket, hub)

    @router.get(prefix + "/session", summary="The caller's session")
    @checked
    async def get_session(request: Request) -> Response:
        """Return (and, when absent, create and set as a cookie) the caller's session id."""
        try:
            session = session_from(request, cfg, "http")
        except StreamHTTPError as exc:
            return exc.response()
        connections = [
            {
                "id": info["id"],
                "processing": info["processing"],
                "connected_at": info["connected_at"],
            }
            for info in hub.manager.connections_of(session.id)
        ]
        view = hub.manager.session(session.id)
        channels = sorted(cast("list[str]", view["channels"])) if view else []
        return session_json(
            session,
            {
                "session_id": session.id,
                "generated": session.generated,
                "connections": connections,
                "channels": channels,
            },
        )

    @router.post(
        prefix + "/session/disconnect", summary="Disconnect one channel of the caller's session"
    )
    @checked
    async def disconnect_channel(
        request: Request,
        channel: Annotated[str, Query(min_length=1, max_length=256)],
    ) -> Response:
        """Every connection of the caller's session stops receiving ``channel``; other
        sessions and the session's other channels are untouched."""
        try:
            session = session_from(request, cfg, "http")
        except StreamHTTPError as exc:
            return exc.response()
        try:
            count = hub.disconnect_channel(session.id, channel)
        except InvalidArgumentError as exc:
            return error_response(400, "invalid_channel", str(exc))
        return session_json(session, {"channel": channel, "disconnected_connections": count})

    @router.post(prefix + "/session/cleanup", summary="Clean up everything of the caller's session")
    @checked
    async def cleanup_session(request: Request) -> Response:
        """Close every connection of the caller's session (reason ``session_cleanup``) and
        drop its stored values and history."""
        try:
            session = session_from(request, cfg, "http")
        except StreamHTTPError as exc:
            return exc.response()
        return session_json(session, hub.cleanup_session(session.id))

    @router.post(
        prefix + "/connections/{connection_id}/close",
        summary="Close one of the caller's connections",
    )
    @checked
    async def close_connection(request: Request, connection_id: int) -> Response:
        """Used by the page-hide beacon; only connections of the caller's session."""
        try:
            session = session_from(request, cfg, "http")
        except StreamHTTPError as exc:
            return exc.response()
        if not hub.close_connection(session.id, connection_id):
            return error_response(
                404,
                "unknown_connection",
                f"connection {connection_id} is not open for this session",
            )
        return session_json(session, {"closed": True, "connection_id": connection_id})

    if cfg.health_path:
        cursors = HealthCursors()

        @router.get(cfg.health_path, summary="Health")
        async def health(request: Request) -> JSONResponse:
            """Counts for anyone; the per-session listing as ``health_sessions`` allows,
            paged with ``?limit=`` and ``?after=`` (the previous page's ``next_after``)."""
            try:
                page = await session_page(hub, request, cursors)
            except StreamHTTPError as exc:
                return exc.response()
            status, document = health_document(hub, page, cursors)
            return JSONResponse(document, status_code=status)

    if cfg.metrics_path:

        @router.get(cfg.metrics_path, summary="Prometheus metrics", response_class=Response)
        async def metrics() -> Response:
            return Response(render_metrics(registry), media_type=CONTENT_TYPE_LATEST)

    _add_preflights(router, hub)
    return router


def _add_preflights(router: APIRouter, hub: RoutedHub) -> None:
    """``OPTIONS`` answers of the origin-checked routes, for the listed CORS origins."""
    cfg = hub.config
    prefix = cfg.prefix
    allowed = parse_origins(cfg.cors_allowed_origins)
    allow_headers = (cfg.session_header, "Last-Event-ID", "Content-Type")
    for path, methods in (
        (prefix + "/sse", ("GET",)),
        (prefix + "/session", ("GET",)),
        (prefix + "/session/disconnect", ("POST",)),
        (prefix + "/session/cleanup", ("POST",)),
        (prefix + "/connections/{connection_id}/close", ("POST",)),
    ):
        router.add_route(
            path,
            Preflight(allowed, methods, allow_headers),  # type: ignore[arg-type]
            methods=["OPTIONS"],
            include_in_schema=False,
        )
