"""Origins and CORS on the SSE and session routes: a foreign Origin is refused 403 before
anything happens; listed origins get credentialed CORS headers and preflights."""

from __future__ import annotations

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from .support import ServerProcess, SSEClient, WSClient, publish, session_id

GOOD = "http://good.example"
EVIL = "http://evil.example"


@pytest.mark.asyncio
async def test_default_refuses_foreign_origins_and_sends_no_cors(
    stream_server: ServerProcess,
) -> None:
    own = stream_server.url
    async with SSEClient(stream_server.url, ["x"], headers={"Origin": EVIL}) as foreign:
        assert foreign.status_code == 403
        assert (await foreign.body_json())["error"] == "forbidden_origin"
    for headers in ({"Origin": own}, {}):
        async with SSEClient(stream_server.url, ["x"], headers=headers) as fine:
            assert fine.status_code == 200
            assert fine.response_headers is not None
            assert "access-control-allow-origin" not in fine.response_headers
    victim = session_id("victim")
    async with (
        SSEClient(stream_server.url, ["x"], session_id=victim) as stream,
        httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client,
    ):
        assert stream.welcome is not None
        # A cross-site form or fetch would carry the victim's cookie: refused unrun.
        cookie = {"Cookie": f"sessionstream_sid={victim}", "Origin": EVIL}
        for path in (
            "/stream/session/cleanup",
            f"/stream/connections/{stream.welcome['connection_id']}/close",
            "/stream/session/disconnect?channel=x",
        ):
            response = await client.post(path, headers=cookie)
            assert response.status_code == 403, path
            assert "access-control-allow-origin" not in response.headers
        preflight = await client.options(
            "/stream/session/cleanup",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 403
        (event_id,) = await publish(stream_server, "x", "still open")
        assert (await stream.next()).id == event_id


@pytest.mark.asyncio
async def test_listed_origin_gets_credentialed_cors(start_server) -> None:
    server: ServerProcess = start_server(SESSIONSTREAM_CORS_ALLOWED_ORIGINS=GOOD)
    sid = session_id("cors")
    async with SSEClient(server.url, ["x"], session_id=sid, headers={"Origin": GOOD}) as sse:
        assert sse.status_code == 200
        headers = sse.response_headers
        assert headers is not None
        assert headers["access-control-allow-origin"] == GOOD
        assert headers["access-control-allow-credentials"] == "true"
        assert "origin" in headers["vary"].lower()
        (event_id,) = await publish(server, "x", "readable")
        assert (await sse.next()).id == event_id
    async with SSEClient(server.url, ["x"], headers={"Origin": EVIL}) as foreign:
        assert foreign.status_code == 403
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
        preflight = await client.options(
            "/stream/session/cleanup",
            headers={
                "Origin": GOOD,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-session-id",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == GOOD
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "x-session-id" in preflight.headers["access-control-allow-headers"].lower()
        cleanup = await client.post(
            "/stream/session/cleanup", headers={"Origin": GOOD, "X-Session-ID": sid}
        )
        assert cleanup.status_code == 200
        assert cleanup.headers["access-control-allow-origin"] == GOOD
    # An origin trusted with credentialed reads may open WebSocket streams too.
    async with await WSClient.open(server.ws_url, headers={"Origin": GOOD}) as ws:
        assert ws.welcome is not None
    with pytest.raises(InvalidStatus) as refused:
        await WSClient.open(server.ws_url, headers={"Origin": EVIL})
    assert refused.value.response.status_code == 403
