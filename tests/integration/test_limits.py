"""Seed 002: connection limits with clear rejections, and recovery when a slot frees up."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .support import SSEClient, WSClient, eventually, get_health, publish, session_id, subscribers


@pytest.mark.asyncio
async def test_connection_n_plus_one_gets_503_then_is_accepted_again(start_server) -> None:
    server = start_server(SESSIONSTREAM_MAX_CONNECTIONS="3", SESSIONSTREAM_RETRY_AFTER_SECONDS="7")
    open_streams = [
        await SSEClient(server.url, ["a"], session_id=session_id(f"u{i}")).__aenter__()
        for i in range(3)
    ]
    try:
        async with SSEClient(server.url, ["a"], session_id=session_id("late")) as refused:
            assert refused.status_code == 503
            assert refused.response_headers is not None
            assert refused.response_headers["retry-after"] == "7"
            body = await refused.body_json()
            assert body["error"] == "server_full"
            assert body["limit"] == 3
            assert "retry" in body["detail"]
        ws = await WSClient.open(server.ws_url, expect_welcome=False)
        code, reason, _ = await ws.until_closed()
        assert code == 1013 and reason.startswith("server_full")

        await open_streams.pop().close()  # one leaves
        await eventually(lambda: _active(server.url, 2), what="a free slot")
        async with SSEClient(server.url, ["a"], session_id=session_id("late")) as accepted:
            assert accepted.status_code == 200
        health = await get_health(server.url)
        assert health["limits"]["rejections"]["server_full"] == 2
    finally:
        for stream in open_streams:
            await stream.close()


async def _active(url: str, expected: int) -> bool:
    return (await get_health(url))["websocket_metrics"]["active_connections"] == expected


@pytest.mark.asyncio
async def test_per_session_limit_gives_429(start_server) -> None:
    server = start_server(SESSIONSTREAM_MAX_PER_SESSION="2")
    sid = session_id("greedy")
    async with (
        SSEClient(server.url, session_id=sid),
        SSEClient(server.url, session_id=sid),
        SSEClient(server.url, session_id=sid) as third,
    ):
        assert third.status_code == 429
        assert third.response_headers is not None and "retry-after" in third.response_headers
        assert (await third.body_json())["error"] == "per_session"
        async with SSEClient(server.url, session_id=session_id("modest")) as other:
            assert other.status_code == 200  # other sessions are not affected
        with pytest.raises(ConnectionClosed) as closed:
            async with connect(
                f"{server.ws_url}/stream/ws", additional_headers={"X-Session-ID": sid}
            ) as ws:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert closed.value.rcvd.reason == "per_session (limit 2); retry after 5 s"


@pytest.mark.asyncio
async def test_per_ip_limit_gives_429(start_server) -> None:
    server = start_server(SESSIONSTREAM_MAX_PER_IP="2")
    async with (
        SSEClient(server.url, session_id=session_id("a")),
        SSEClient(server.url, session_id=session_id("b")),
        SSEClient(server.url, session_id=session_id("c")) as third,
    ):
        assert third.status_code == 429
        assert (await third.body_json())["error"] == "per_ip"
    async with httpx.AsyncClient(timeout=5.0) as client:
        metrics = (await client.get(server.url + "/metrics")).text
    assert 'sessionstream_rejections_total{kind="per_ip"} 1.0' in metrics


@pytest.mark.asyncio
async def test_subscribe_past_the_channel_cap_gets_an_error_and_the_socket_stays_usable(
    start_server,
) -> None:
    server = start_server(SESSIONSTREAM_MAX_CHANNELS_PER_CONNECTION="8")
    sid = session_id("many")
    # The welcome holds two channels: "c0" and the session's private one.
    async with await WSClient.open(server.ws_url, channels=["c0"], session_id=sid) as ws:
        await ws.send({"type": "subscribe", "channels": [f"c{i}" for i in range(1, 6)], "ref": 1})
        assert (await ws.next_type("subscribed"))["ref"] == 1  # 7 of 8
        await ws.send({"type": "subscribe", "channels": ["c6", "c7", "c8"], "ref": 2})
        error = await ws.next_type("error")
        assert error["ref"] == 2
        assert error["error"] == "too_many_channels" and error["limit"] == 8
        assert "at most 8 channels; it has 7 and asked for 3 more" in error["detail"]
        assert await subscribers(server, "c6") == 0  # the refused subscribe changed nothing
        await ws.send({"type": "subscribe", "channels": ["c6"], "ref": 3})
        assert (await ws.next_type("subscribed"))["ref"] == 3  # exactly at the cap
        (event_id,) = await publish(server, "c6", {"n": 1})
        event = await ws.next_type("event")
        assert (event["id"], event["data"]) == (event_id, {"n": 1})
