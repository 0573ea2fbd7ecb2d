"""Seed 004: the multi-browser chat server (demo app, WebSocket, swap_after_processing).

A "browser" here is one browser session id; its windows or tabs are connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .support import ServerProcess, WSClient, eventually, get_health, health_key, session_id


async def chat_turn(ws: WSClient, text: str, timeout: float = 10.0) -> dict[str, Any]:
    """Send a chat message and read the whole turn; return what arrived."""
    await ws.send({"type": "chat", "text": text})
    accepted = await ws.next_type("chat.accepted", timeout)
    turn = accepted["turn"]
    tokens: list[str] = []
    while True:
        message = await ws.next(
            lambda m: m["type"] == "event" and m["data"].get("turn") == turn, timeout
        )
        if message["event"] == "chat.token":
            tokens.append(message["data"]["token"])
        elif message["event"] in ("chat.done", "chat.error"):
            final = message
            break
    status = await ws.next(
        lambda m: (
            m["type"] == "event"
            and m["event"] == "chat.status"
            and m["data"] == {"processing": False, "turn": turn}
        ),
        timeout,
    )
    return {"turn": turn, "tokens": tokens, "final": final, "status": status}


async def metrics(server: ServerProcess) -> dict[str, Any]:
    return (await get_health(server.url))["websocket_metrics"]


@pytest.mark.asyncio
async def test_single_browser(demo_server: ServerProcess) -> None:
    sid = session_id("single")
    async with await WSClient.open(demo_server.ws_url, session_id=sid) as ws:
        assert ws.welcome is not None and ws.welcome["session_id"] == sid
        await ws.send({"type": "ping"})
        assert await ws.next_type("pong")
        health = await get_health(demo_server.url)
        assert health["sessions"][health_key(sid)]["connection_count"] == 1


@pytest.mark.asyncio
async def test_two_browsers_sequential_replacement(demo_server: ServerProcess) -> None:
    sid = session_id("sequential")
    first = await WSClient.open(demo_server.ws_url, session_id=sid)
    async with await WSClient.open(demo_server.ws_url, session_id=sid) as second:
        code, reason, _ = await first.until_closed()
        assert (code, reason) == (4000, "replaced")
        result = await chat_turn(second, "hello from the second window")
        assert result["final"]["event"] == "chat.done"
        health = await get_health(demo_server.url)
        assert health["sessions"][health_key(sid)]["connection_count"] == 1


@pytest.mark.asyncio
async def test_two_browsers_during_processing(demo_server: ServerProcess) -> None:
    """The seed-004 bug: a window opened while another is processing must be usable at
    once, the in-flight reply must complete, and nothing may be orphaned."""
    sid = session_id("swap")
    first = await WSClient.open(demo_server.ws_url, session_id=sid)
    await first.send({"type": "chat", "text": "/slow please take your time"})
    turn = (await first.next_type("chat.accepted"))["turn"]
    await first.next_event("chat.token")  # the reply is streaming: the first window is busy
    assert (await metrics(demo_server))["processing_connections"] >= 1

    second = await WSClient.open(demo_server.ws_url, session_id=sid)  # usable at once
    await second.send({"type": "ping", "ref": "now"})
    assert (await second.next_type("pong", timeout=1.0))["ref"] == "now"
    assert (await metrics(demo_server))["pending_swaps"] >= 1

    # Both windows receive the rest of the reply; the busy one finishes, then is swapped out.
    done_second = await second.next(
        lambda m: m["type"] == "event" and m["event"] == "chat.done", timeout=10
    )
    code, reason, seen_by_first = await first.until_closed(timeout=10)
    assert (code, reason) == (4000, "replaced")
    done_first = [m for m in seen_by_first if m.get("event") == "chat.done"]
    assert done_first and done_first[0]["data"] == done_second["data"]
    assert done_second["data"]["turn"] == turn
    assert "take your time" in done_second["data"]["text"]

    # Nothing stuck: no processing, no pending swap, one connection, and it still chats.
    await eventually(lambda: _idle(demo_server, sid), what="processing and swap state cleared")
    result = await chat_turn(second, "still there?")
    assert result["final"]["event"] == "chat.done"
    await second.close()


async def _idle(server: ServerProcess, sid: str) -> bool:
    health = await get_health(server.url)
    m = health["websocket_metrics"]
    session = health["sessions"].get(health_key(sid))
    return (
        m["processing_connections"] == 0
        and m["pending_swaps"] == 0
        and session is not None
        and session["connection_count"] == 1
    )


@pytest.mark.asyncio
async def test_five_concurrent_browsers(demo_server: ServerProcess) -> None:
    sids = [session_id(f"five{i}") for i in range(5)]
    clients = await asyncio.gather(*(WSClient.open(demo_server.ws_url, session_id=s) for s in sids))
    try:
        results = await asyncio.gather(
            *(chat_turn(ws, f"message from browser {i}") for i, ws in enumerate(clients))
        )
        for i, result in enumerate(results):
            assert result["final"]["event"] == "chat.done"
            assert f"message from browser {i}" in result["final"]["data"]["text"]
            # Each browser saw only its own turn: nothing from the other four.
            others = [
                m
                for m in clients[i].buffer
                if m["type"] == "event" and m["data"].get("turn") not in (None, result["turn"])
            ]
            assert others == []
        health = await get_health(demo_server.url)
        for sid in sids:
            assert health["sessions"][health_key(sid)]["connection_count"] == 1
    finally:
        for ws in clients:
            await ws.close()


@pytest.mark.asyncio
async def test_rapid_reconnection(demo_server: ServerProcess) -> None:
    sid = session_id("rapid")
    before = (await metrics(demo_server))["total_connections_lifetime"]
    for _ in range(10):
        ws = await WSClient.open(demo_server.ws_url, session_id=sid)
        await ws.send({"type": "ping"})
        await ws.next_type("pong")
        await ws.close()
    await eventually(
        lambda: _session_gone(demo_server, sid), timeout=2.0, what="every connection released"
    )
    assert (await metrics(demo_server))["total_connections_lifetime"] >= before + 10
    async with await WSClient.open(demo_server.ws_url, session_id=sid) as ws:
        assert (await chat_turn(ws, "after ten reconnects"))["final"]["event"] == "chat.done"


async def _session_gone(server: ServerProcess, sid: str) -> bool:
    return health_key(sid) not in (await get_health(server.url))["sessions"]


@pytest.mark.asyncio
async def test_chat_message_delivery(demo_server: ServerProcess) -> None:
    sid = session_id("chat")
    async with await WSClient.open(demo_server.ws_url, session_id=sid) as ws:
        result = await chat_turn(ws, "hello agent")
        final = result["final"]["data"]
        assert final["role"] == "assistant"
        assert final["text"] == "".join(result["tokens"])
        assert "hello agent" in final["text"]
        assert len(result["tokens"]) > 5  # streamed token by token
        await ws.send({"type": "history"})
        history = await ws.next_type("history")
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
        assert history["messages"][1]["text"] == final["text"]
        assert history["processing"] is False


@pytest.mark.asyncio
async def test_error_recovery(demo_server: ServerProcess) -> None:
    sid = session_id("errors")
    errors_before = (await metrics(demo_server))["total_errors"]
    async with await WSClient.open(demo_server.ws_url, session_id=sid) as ws:
        failed = await chat_turn(ws, "/fail")
        assert failed["final"]["event"] == "chat.error"
        assert "failed on purpose" in failed["final"]["data"]["error"]
        m = await metrics(demo_server)
        assert m["processing_connections"] == 0
        assert m["total_errors"] >= errors_before + 1
        # No stuck state: the next turn works.
        ok = await chat_turn(ws, "and now?")
        assert ok["final"]["event"] == "chat.done"
        # Invalid chat input is refused with a clear error, not a crash.
        await ws.send({"type": "chat", "text": ""})
        assert (await ws.next_type("error"))["error"] == "invalid_message"
        await ws.send({"type": "ping"})
        assert await ws.next_type("pong")


@pytest.mark.asyncio
async def test_second_message_while_busy_is_refused_not_queued(demo_server: ServerProcess) -> None:
    sid = session_id("busy")
    async with await WSClient.open(demo_server.ws_url, session_id=sid) as ws:
        await ws.send({"type": "chat", "text": "/slow one"})
        await ws.next_type("chat.accepted")
        await ws.send({"type": "chat", "text": "two", "ref": "second"})
        error = await ws.next_type("error")
        assert (error["error"], error["ref"]) == ("busy", "second")
        await ws.next(lambda m: m.get("event") == "chat.done", timeout=10)


@pytest.mark.asyncio
async def test_chat_window_does_not_replace_the_sessions_sse_streams(
    demo_server: ServerProcess,
) -> None:
    from .support import SSEClient

    sid = session_id("mixed")
    async with SSEClient(demo_server.url, ["dashboard"], session_id=sid) as dashboard:
        async with await WSClient.open(demo_server.ws_url, session_id=sid):
            event = await dashboard.next(timeout=3)
            assert event.event == "stats"  # still live, not closed as replaced
