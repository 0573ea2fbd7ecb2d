"""Token-bucket limits: new connections per address and per session, client messages per
session, application routes behind ``hub.rate_limited``; 429 + Retry-After / close 1013;
bounded bucket tables."""

from __future__ import annotations

import httpx
import pytest

from sessionstream.fastapi.rate_limit import KeyedBuckets

from .support import ServerProcess, SSEClient, WSClient, session_id


def test_bucket_table_stays_bounded_under_many_keys() -> None:
    buckets = KeyedBuckets("flood", rate=1.0, burst=2, max_keys=1_000)
    now = 100.0
    for n in range(100_000):  # one new address per request, faster than any refill
        assert buckets.take(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", now + n * 1e-6) == 0.0
        assert len(buckets) <= 1_000
    # Idle buckets (refilled completely) go first, so an active key keeps its state.
    busy = KeyedBuckets("busy", rate=1.0, burst=1, max_keys=3)
    assert busy.take("hot", 0.0) == 0.0
    assert busy.take("hot", 0.1) > 0  # empty now
    for n in range(10):
        busy.take(f"idle-{n}", 0.2 + n * 0.01)
        busy.take("hot", 0.2 + n * 0.01)  # stays recently used
    assert "hot" in busy._buckets and len(busy) == 3
    assert busy.take("hot", 0.5) > 0  # still limited: its bucket was not dropped


@pytest.mark.asyncio
async def test_new_connections_per_address(start_server) -> None:
    server: ServerProcess = start_server(
        SESSIONSTREAM_CONNECT_RATE_PER_IP="0.2", SESSIONSTREAM_CONNECT_BURST_PER_IP="3"
    )
    for _ in range(3):
        async with SSEClient(server.url, ["a"]) as ok:
            assert ok.status_code == 200
    async with SSEClient(server.url, ["a"]) as refused:
        assert refused.status_code == 429
        assert refused.response_headers is not None
        retry = int(refused.response_headers["retry-after"])
        assert 1 <= retry <= 5
        body = await refused.body_json()
        assert body["error"] == "rate_limited" and body["retry_after"] == retry
        assert "from this address" in body["detail"]
    ws = await WSClient.open(server.ws_url, expect_welcome=False)
    code, reason, _ = await ws.until_closed()
    assert code == 1013
    assert reason.startswith("rate_limited") and "retry after" in reason


@pytest.mark.asyncio
async def test_new_connections_per_session(start_server) -> None:
    server: ServerProcess = start_server(
        SESSIONSTREAM_CONNECT_RATE_PER_SESSION="0.2", SESSIONSTREAM_CONNECT_BURST_PER_SESSION="2"
    )
    sid = session_id("eager")
    for _ in range(2):
        async with SSEClient(server.url, ["a"], session_id=sid) as ok:
            assert ok.status_code == 200
    async with SSEClient(server.url, ["a"], session_id=sid) as refused:
        assert refused.status_code == 429
        assert "for this session" in (await refused.body_json())["detail"]
    ws = await WSClient.open(server.ws_url, session_id=sid, expect_welcome=False)
    code, reason, _ = await ws.until_closed()
    assert code == 1013 and "retry after" in reason
    async with SSEClient(server.url, ["a"], session_id=session_id("calm")) as other:
        assert other.status_code == 200  # other sessions are not affected


@pytest.mark.asyncio
async def test_client_messages_per_session_over_all_tabs(start_server) -> None:
    server: ServerProcess = start_server(
        SESSIONSTREAM_WS_SESSION_MESSAGES_PER_SECOND="0.2",
        SESSIONSTREAM_WS_SESSION_MESSAGE_BURST="4",
    )
    sid = session_id("chatty")
    async with (
        await WSClient.open(server.ws_url, session_id=sid) as tab1,
        await WSClient.open(server.ws_url, session_id=sid) as tab2,
        await WSClient.open(server.ws_url, session_id=session_id("quiet")) as stranger,
    ):
        for n in range(4):  # each tab alone is far below the per-connection limit
            tab = tab1 if n % 2 else tab2
            await tab.send({"type": "ping", "ref": n})
            assert (await tab.next_type("pong"))["ref"] == n
        await tab1.send({"type": "ping", "ref": "over"})
        error = await tab1.next_type("error")
        assert error["error"] == "rate_limited" and error["retry_after"] > 0
        await tab2.send({"type": "ping", "ref": "over2"})
        assert (await tab2.next_type("error"))["error"] == "rate_limited"
        await stranger.send({"type": "ping", "ref": "s"})
        assert (await stranger.next_type("pong"))["ref"] == "s"


@pytest.mark.asyncio
async def test_rate_limited_dependency_on_an_application_route(
    stream_server: ServerProcess,
) -> None:
    sid = session_id("publisher")
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client:
        headers = {"X-Session-ID": sid}
        for _ in range(2):
            assert (await client.post("/test/limited", headers=headers)).status_code == 200
        refused = await client.post("/test/limited", headers=headers)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["detail"]["error"] == "rate_limited"
        other = await client.post("/test/limited", headers={"X-Session-ID": session_id("o")})
        assert other.status_code == 200
