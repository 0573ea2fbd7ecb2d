"""Cross-site WebSocket hijacking: a page of another site cannot open the user's stream
(the browser would send the session cookie along); the server's own pages, listed
origins and clients without an Origin can."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from sessionstream.fastapi.origin import origin_allowed, parse_origins

from .support import ServerProcess, WSClient, get_health


async def _open(server: ServerProcess, origin: str | None) -> int:
    """The handshake's HTTP status (101 when the stream opened)."""
    headers = {"Origin": origin} if origin is not None else None
    try:
        async with connect(
            server.ws_url + "/stream/ws", additional_headers=headers, open_timeout=10
        ) as ws:
            await ws.recv()  # the welcome frame
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.asyncio
async def test_a_foreign_origin_is_refused_before_anything_opens(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    assert await _open(server, "https://evil.example") == 403
    assert await _open(server, "null") == 403  # sandboxed iframes, file:// pages
    assert (await get_health(server.url))["websocket_metrics"]["total_connections_lifetime"] == 0
    # The server's own pages and non-browser clients still connect.
    assert await _open(server, server.url) == 101
    assert await _open(server, None) == 101
    async with await WSClient.open(server.ws_url) as ws:
        assert ws.welcome is not None


@pytest.mark.asyncio
async def test_listed_origins_may_connect(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(
        SESSIONSTREAM_WS_ALLOWED_ORIGINS="https://app.example, https://Admin.example:8443"
    )
    assert await _open(server, "https://app.example") == 101
    assert await _open(server, "https://admin.example:8443") == 101
    assert await _open(server, "https://admin.example") == 403
    assert await _open(server, "http://app.example") == 403


def test_origin_rules() -> None:
    own = parse_origins("")
    assert origin_allowed(None, "h:1", own)
    assert origin_allowed("http://H:1", "h:1", own)
    assert not origin_allowed("http://h:2", "h:1", own)
    assert not origin_allowed("http://h:1", None, own)
    assert origin_allowed("https://x.example", "h:1", parse_origins("*"))
    assert parse_origins(" https://A.example/ , ") == frozenset({"https://a.example"})
