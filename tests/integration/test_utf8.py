"""Frames are UTF-8 text on both transports, whatever is published or sent."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from websockets.asyncio.client import connect

from .support import (
    ServerProcess,
    SSEClient,
    WSClient,
    eventually,
    get_health,
    publish,
    session_id,
)


async def _publish_bytes(server: ServerProcess, channel: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
        return await client.post("/test/publish_bytes", params={"channel": channel}, content=body)


async def _active(server: ServerProcess) -> int:
    return (await get_health(server.url))["websocket_metrics"]["active_connections"]


@pytest.mark.asyncio
async def test_a_payload_that_is_not_utf8_is_refused_and_every_subscriber_keeps_streaming(
    stream_server: ServerProcess,
) -> None:
    channel = f"utf8-{session_id('c')}"
    async with SSEClient(stream_server.url, [channel]) as sse:
        ws = await WSClient.open(stream_server.ws_url, channels=[channel])
        before = sse.last_event_id_seen
        assert before

        refused = await _publish_bytes(stream_server, channel, b"ok \xff\xfe")
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["field"] == "data" and body["offset"] == 3
        assert "not valid UTF-8" in body["detail"] and "byte offset 3" in body["detail"]

        accepted = await _publish_bytes(stream_server, channel, "bytes é".encode())
        assert accepted.status_code == 200
        [text_id] = await publish(stream_server, channel, "text €")
        # Both transports carry on, in order, with nothing of the refused event.
        assert [(e.id, e.data) for e in await sse.collect(2)] == [
            (accepted.json()["ids"][0], "bytes é"),
            (text_id, "text €"),
        ]
        assert (await ws.next_event("message"))["data"] == "bytes é"
        assert (await ws.next_event("message"))["data"] == "text €"
        await ws.send({"type": "ping", "ref": "alive"})
        assert (await ws.next_type("pong"))["ref"] == "alive"
        await ws.close()

    # A resume replays what history holds: the two valid events only.
    async with SSEClient(stream_server.url, [channel], last_event_id=before) as resumed:
        assert resumed.welcome is not None and resumed.welcome["resume"] == "exact"
        assert [e.data for e in await resumed.collect(2)] == ["bytes é", "text €"]
    ws = await WSClient.open(stream_server.ws_url, channels=[channel], last_event_id=before)
    assert ws.welcome is not None and ws.welcome["resume"] == "exact"
    assert (await ws.next_event("message"))["data"] == "bytes é"
    assert (await ws.next_event("message"))["data"] == "text €"
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("extra", ["é", "€", "😀"])
async def test_reset_echoes_a_last_event_id_on_character_boundaries(
    stream_server: ServerProcess, extra: str
) -> None:
    channel = f"reset-{session_id('r')}"
    # The reset frame echoes at most 64 bytes: the character after 63 ASCII ones
    # does not fit and is dropped whole.
    last = "x" * 63 + extra
    async with SSEClient(stream_server.url, [channel], last_event_id_query=last) as sse:
        assert sse.welcome is not None and sse.welcome["resume"] == "reset"
        reset = (await sse.next_of("reset")).json()
        assert reset["reason"] == "malformed_id" and reset["last_event_id"] == "x" * 63
    ws = await WSClient.open(stream_server.ws_url, channels=[channel], last_event_id=last)
    assert ws.welcome is not None and ws.welcome["resume"] == "reset"
    reset = await ws.next_type("reset")
    assert reset["reason"] == "malformed_id" and reset["last_event_id"] == "x" * 63
    await ws.send({"type": "ping"})
    assert await ws.next_type("pong")
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("extra", ["é", "€", "😀"])
async def test_a_channel_name_cut_inside_a_character_is_a_clear_400(
    stream_server: ServerProcess, extra: str
) -> None:
    # The native message quotes 80 bytes of the name: 79 ASCII and a multi-byte one.
    channel = "c" * 79 + extra
    async with SSEClient(stream_server.url, [channel]) as refused:
        assert refused.status_code == 400
        body = await refused.body_json()
        assert body["error"] == "invalid_channel"
        assert f"'{'c' * 79}'" in body["detail"] and "printable ASCII" in body["detail"]

    ws = await WSClient.open(stream_server.ws_url, channels=[channel], expect_welcome=False)
    code, reason, _ = await ws.until_closed()
    assert code == 1008 and reason.startswith("invalid_channel: channel name 'ccc")

    async with await WSClient.open(stream_server.ws_url) as ws:
        await ws.send({"type": "subscribe", "channels": [channel], "ref": 1})
        error = await ws.next_type("error")
        assert error["error"] == "invalid_channel" and error["ref"] == 1
        assert f"'{'c' * 79}'" in error["detail"]


@pytest.mark.asyncio
async def test_names_with_lone_surrogates_in_websocket_messages_get_error_frames(
    stream_server: ServerProcess,
) -> None:
    # JSON escapes can spell a lone surrogate, which has no UTF-8 form.
    async with await WSClient.open(stream_server.ws_url) as ws:
        await ws.send('{"type": "subscribe", "channels": ["\\ud800"], "ref": 1}')
        error = await ws.next_type("error")
        assert error["error"] == "invalid_channel" and error["ref"] == 1
        await ws.send('{"type": "subscribe", "channel": "ok", "last_event_id": "\\udcff-1"}')
        assert (await ws.next_type("subscribed"))["resume"] == "reset"
        await ws.send('{"type": "unsubscribe", "channel": "\\ud800", "ref": 2}')
        assert (await ws.next_type("unsubscribed"))["ref"] == 2
        # Replies that echo such a str are still UTF-8 text (as \\u escapes).
        await ws.send('{"type": "ping", "ts": "\\ud800", "ref": "\\udcff"}')
        pong = await ws.next_type("pong")
        assert (pong["echo"], pong["ref"]) == ("\ud800", "\udcff")
        await ws.send('{"type": "teleport", "ref": "\\ud800"}')
        assert (await ws.next_type("error"))["error"] == "unknown_type"
        await ws.send({"type": "ping", "ref": "alive"})
        assert (await ws.next_type("pong"))["ref"] == "alive"


@pytest.mark.asyncio
async def test_a_client_that_floods_without_reading_is_closed_as_slow_consumer(
    start_server,
) -> None:
    # Every ping is answered by a pong echoing its 4 KB "ts", a reply the client does
    # not read: once the server's sends block, the unsent replies must stay bounded.
    server: ServerProcess = start_server(
        SESSIONSTREAM_WS_MESSAGES_PER_SECOND="1000000",
        SESSIONSTREAM_WS_MESSAGE_BURST="1000000",
        SESSIONSTREAM_WS_SESSION_MESSAGES_PER_SECOND="0",
        SESSIONSTREAM_SEND_TIMEOUT="60",
    )
    baseline = await _active(server)
    # A small receive buffer and no compression: the server's sends block soon.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    connection = await connect(
        server.ws_url + "/stream/ws",
        sock=sock,
        ping_interval=None,
        open_timeout=10,
        compression=None,
    )
    ws = WSClient(connection)
    await ws.next_type("welcome")
    assert await _active(server) == baseline + 1

    ping = json.dumps({"type": "ping", "ts": "x" * 4000})
    sent = 0
    limit = 10_000  # about ten times what the buffers between client and server hold
    closed_natively = False
    while sent < limit and not closed_natively:
        for _ in range(100):
            await connection.send(ping)
            sent += 1
        closed_natively = await _active(server) == baseline
    assert closed_natively, f"still open after {sent} unread replies"

    # Reading now: what was already on its way, then the close frame that says why.
    code, reason, seen = await ws.until_closed(timeout=20)
    replies = [m for m in seen if m["type"] == "pong"]
    assert len(replies) < sent - 256, "the unsent replies were kept, not dropped"
    # The sender finishes its blocked send, then closes with the reason.
    assert (code, reason) == (4001, "slow_consumer")
    if server.delivery == "python":
        await eventually(
            lambda: "closed as slow_consumer" in server.log(), what="the slow_consumer log line"
        )
    # The server is fine: a new connection is served.
    async with await WSClient.open(server.ws_url) as fresh:
        await fresh.send({"type": "ping", "ref": "next"})
        assert (await fresh.next_type("pong"))["ref"] == "next"
