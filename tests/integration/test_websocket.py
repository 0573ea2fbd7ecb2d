"""WebSocket endpoint: the JSON protocol, batching and close codes (real uvicorn, websockets)."""

from __future__ import annotations

import asyncio

import pytest

from .support import (
    ServerProcess,
    SSEClient,
    WSClient,
    eventually,
    publish,
    session_id,
    subscribers,
)


@pytest.mark.asyncio
async def test_welcome_then_ping_pong(stream_server: ServerProcess) -> None:
    sid = session_id("ws")
    async with await WSClient.open(stream_server.ws_url, channels=["news"], session_id=sid) as ws:
        welcome = ws.welcome
        assert welcome is not None
        assert welcome["session_id"] == sid
        assert welcome["resume"] == "live"
        assert set(welcome["channels"]) == {"news", f"session:{sid}"}
        assert {"ping", "subscribe", "unsubscribe", "echo"} <= set(welcome["message_types"])
        await ws.send({"type": "ping", "ts": 123, "ref": "p1"})
        pong = await ws.next_type("pong")
        assert pong["echo"] == 123 and pong["ref"] == "p1"


@pytest.mark.asyncio
async def test_events_carry_json_data_as_json(stream_server: ServerProcess) -> None:
    channel = f"json-{session_id('j')}"
    async with await WSClient.open(stream_server.ws_url, channels=[channel]) as ws:
        (json_id,) = await publish(stream_server, channel, {"k": [1, "two"]}, event="thing")
        (text_id,) = await publish(stream_server, channel, "plain\ntext", raw=True)
        first = await ws.next_type("event")
        assert first == {
            "type": "event",
            "id": json_id,
            "channel": channel,
            "event": "thing",
            "data": {"k": [1, "two"]},
        }
        second = await ws.next_type("event")
        assert (second["id"], second["data"]) == (text_id, "plain\ntext")


@pytest.mark.asyncio
async def test_subscribe_and_unsubscribe_with_acks(stream_server: ServerProcess) -> None:
    channel = f"dyn-{session_id('d')}"
    async with await WSClient.open(stream_server.ws_url) as ws:
        await ws.send({"type": "subscribe", "channels": [channel], "ref": 7})
        ack = await ws.next_type("subscribed")
        assert ack == {"type": "subscribed", "channels": [channel], "resume": "live", "ref": 7}
        assert await subscribers(stream_server, channel) == 1
        (event_id,) = await publish(stream_server, channel, {"n": 1})
        assert (await ws.next_type("event"))["id"] == event_id
        await ws.send({"type": "unsubscribe", "channel": channel})
        assert (await ws.next_type("unsubscribed"))["channels"] == [channel]
        assert await subscribers(stream_server, channel) == 0


@pytest.mark.asyncio
async def test_subscribe_with_last_event_id_replays_the_new_channel(
    stream_server: ServerProcess,
) -> None:
    channel = f"late-{session_id('l')}"
    ids = await publish(stream_server, channel, {"x": 1}, count=3)
    async with await WSClient.open(stream_server.ws_url) as ws:
        await ws.send({"type": "subscribe", "channels": [channel], "last_event_id": ids[0]})
        ack = await ws.next_type("subscribed")
        assert ack["resume"] == "exact"
        replayed = [await ws.next_type("event") for _ in range(2)]
        assert [m["id"] for m in replayed] == ids[1:]


@pytest.mark.asyncio
async def test_many_events_per_frame_when_behind(stream_server: ServerProcess) -> None:
    channel = f"burst-{session_id('b')}"
    async with await WSClient.open(stream_server.ws_url, channels=[channel]) as ws:
        ids = await publish(stream_server, channel, "x", count=200)
        received: list[str] = []
        frames = 0
        while len(received) < 200:
            frame = await ws.recv_frame()
            frames += 1
            received += [m["id"] for m in frame if m["type"] == "event"]
        assert received == ids
        assert frames < 200  # events were batched: one send per ready connection, not per event


@pytest.mark.asyncio
async def test_application_message_handler_and_processing(stream_server: ServerProcess) -> None:
    sid = session_id("work")
    async with await WSClient.open(stream_server.ws_url, session_id=sid) as ws:
        await ws.send({"type": "echo", "payload": {"a": 1}, "ref": "e"})
        assert await ws.next_type("echo") == {"type": "echo", "payload": {"a": 1}, "ref": "e"}
        await ws.send({"type": "work", "seconds": 0.3})
        health = await eventually(
            lambda: _processing(stream_server, 1), what="processing_connections == 1"
        )
        assert health
        await ws.next_event("work.done")
        assert await ws.next_type("work.finished")
        await eventually(lambda: _processing(stream_server, 0), what="processing_connections == 0")


async def _processing(server: ServerProcess, expected: int) -> bool:
    from .support import get_health

    health = await get_health(server.url)
    return health["websocket_metrics"]["processing_connections"] == expected


@pytest.mark.asyncio
async def test_handler_failures_reach_the_client_without_internals(
    stream_server: ServerProcess,
) -> None:
    async with await WSClient.open(stream_server.ws_url) as ws:
        await ws.send({"type": "explode", "expected": True, "ref": 1})
        expected = await ws.next_type("error")
        assert expected == {
            "type": "error",
            "error": "exploded",
            "detail": "asked to fail",
            "ref": 1,
        }
        await ws.send({"type": "explode", "ref": 2})
        unexpected = await ws.next_type("error")
        assert unexpected["error"] == "handler_error" and unexpected["ref"] == 2
        assert "internal detail" not in unexpected["detail"]
        await ws.send({"type": "ping"})
        assert await ws.next_type("pong")  # the connection is still usable


@pytest.mark.asyncio
async def test_replaced_close_code_with_policy_latest(start_server) -> None:
    server = start_server(SESSIONSTREAM_POLICY="latest")
    sid = session_id("latest")
    first = await WSClient.open(server.ws_url, session_id=sid)
    async with await WSClient.open(server.ws_url, session_id=sid) as second:
        code, reason, _ = await first.until_closed()
        assert (code, reason) == (4000, "replaced")
        await second.send({"type": "ping"})
        assert await second.next_type("pong")


@pytest.mark.asyncio
async def test_slow_consumer_is_closed_with_a_reason(start_server) -> None:
    server = start_server(SESSIONSTREAM_MAILBOX_EVENTS="10")
    channel = "firehose"
    ws = await WSClient.open(server.ws_url, channels=[channel])
    async with SSEClient(server.url, [channel]) as sse:
        await publish(server, channel, "x", count=500)  # all queued before any send
        code, reason, _ = await ws.until_closed()
        assert (code, reason) == (4001, "slow_consumer")
        close = (await sse.expect_end())[-1]
        assert (close.event, close.json()) == ("close", {"reason": "slow_consumer"})
    assert (await _metric(server, "slow_consumer_disconnects")) >= 2


async def _metric(server: ServerProcess, key: str) -> int:
    from .support import get_health

    return (await get_health(server.url))["stream"][key]


@pytest.mark.asyncio
async def test_client_gone_is_released_at_once(stream_server: ServerProcess) -> None:
    channel = f"wsgone-{session_id('g')}"
    ws = await WSClient.open(stream_server.ws_url, channels=[channel])
    assert await subscribers(stream_server, channel) == 1
    ws.connection.transport.abort()  # no close handshake: the TCP connection just drops
    await asyncio.sleep(0)
    await eventually(lambda: _no_subscribers(stream_server, channel), timeout=1.0, what="release")


async def _no_subscribers(server: ServerProcess, channel: str) -> bool:
    return await subscribers(server, channel) == 0
