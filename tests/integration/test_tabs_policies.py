"""Tabs of one session: the replaced stream that must not come back (``latest``) and the
``failover`` policy (one tab receives, the most recent standby takes over exactly)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from .support import (
    ServerProcess,
    SSEClient,
    WSClient,
    eventually,
    get_health,
    health_key,
    publish,
    session_id,
)


async def session_connections(server: ServerProcess, sid: str) -> list[dict[str, Any]]:
    health = await get_health(server.url)
    listed = health["sessions"].get(health_key(sid))
    return listed["connections"] if listed else []


async def lifetime(server: ServerProcess) -> int:
    return int((await get_health(server.url))["websocket_metrics"]["total_connections_lifetime"])


async def sse_events_until(stream: SSEClient, count: int, timeout: float = 5.0) -> list[str]:
    """Ids of the next ``count`` data events (control events are skipped)."""
    ids: list[str] = []
    while len(ids) < count:
        event = await stream.next(timeout)
        if event.event == "message":
            assert event.id is not None
            ids.append(event.id)
    return ids


async def ws_events_until(ws: WSClient, count: int, timeout: float = 5.0) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        message = await ws.next(lambda m: m["type"] == "event", timeout)
        ids.append(message["id"])
    return ids


# -- latest: a replaced EventSource stays closed ------------------------------------


@pytest.mark.asyncio
async def test_replaced_stream_is_marked_and_its_reconnect_gets_204(start_server) -> None:
    server = start_server(SESSIONSTREAM_SSE_POLICY="latest")
    sid = session_id("marker")
    async with SSEClient(server.url, ["news"], session_id=sid) as old_tab:
        async with SSEClient(server.url, ["news"], session_id=sid) as new_tab:
            ended = await old_tab.expect_end()
            close = [e for e in ended if e.event == "close"]
            assert close and close[-1].json() == {"reason": "replaced"}
            assert close[-1].id == "replaced"
            assert old_tab.last_event_id_seen == "replaced", "EventSource would send it back"
            opened = await lifetime(server)

            # What a plain EventSource does next: reconnect with the marker.
            async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
                by_header = await client.get(
                    "/stream/sse",
                    params={"channel": "news"},
                    headers={
                        "Last-Event-ID": "replaced",
                        "Accept": "text/event-stream",
                        "X-Session-ID": sid,
                    },
                )
                by_query = await client.get(
                    "/stream/sse",
                    params={"channel": "news", "last_event_id": "replaced"},
                    headers={"X-Session-ID": sid},
                )
            for response in (by_header, by_query):
                assert response.status_code == 204
                assert response.content == b""
            assert await lifetime(server) == opened, "the 204 must not register a connection"
            connections = await session_connections(server, sid)
            assert new_tab.welcome is not None
            assert [c["id"] for c in connections] == [new_tab.welcome["connection_id"]]

            ids = await publish(server, "news", {"still": "here"})
            event = await new_tab.next_of("message")
            assert event.id == ids[0], "the tab that took over is untouched"

            # A fresh stream (no Last-Event-ID), the explicit "use this tab", still
            # takes over.
            async with SSEClient(server.url, ["news"], session_id=sid) as taken_back:
                ended = await new_tab.expect_end()
                assert [e.json() for e in ended if e.event == "close"] == [{"reason": "replaced"}]
                assert taken_back.welcome is not None


@pytest.mark.asyncio
async def test_other_close_reasons_carry_no_marker(start_server) -> None:
    server = start_server()
    sid = session_id("nomarker")
    async with SSEClient(server.url, ["news"], session_id=sid) as stream:
        async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
            response = await client.post("/stream/session/cleanup", headers={"X-Session-ID": sid})
            assert response.status_code == 200
        ended = await stream.expect_end()
        close = [e for e in ended if e.event == "close"]
        assert close[-1].json() == {"reason": "session_cleanup"} and close[-1].id is None


# -- failover ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_failover_over_sse(start_server) -> None:
    server = start_server(SESSIONSTREAM_SSE_POLICY="failover")
    sid = session_id("failover-sse")
    active = SSEClient(server.url, ["news"], session_id=sid)
    await active.__aenter__()
    try:
        async with SSEClient(server.url, ["news"], session_id=sid) as standby:
            assert active.welcome is not None and standby.welcome is not None
            active_id = active.welcome["connection_id"]
            standby_id = standby.welcome["connection_id"]
            told = await standby.next()
            assert (told.event, told.json(), told.id) == (
                "standby",
                {"active_connection_id": active_id},
                None,
            )
            assert standby.welcome["channels"] == ["news", f"session:{sid}"]

            connections = await session_connections(server, sid)
            assert [(c["id"], c["state"]) for c in connections] == [
                (active_id, "active"),
                (standby_id, "standby"),
            ]
            health = await get_health(server.url)
            assert health["websocket_metrics"]["standby_connections"] == 1
            assert health["websocket_metrics"]["active_connections"] == 2

            before = await publish(server, "news", "before", count=10)
            assert await sse_events_until(active, 10) == before
            await asyncio.sleep(0.3)  # time enough for anything sent to the standby to arrive

            closed_at = time.monotonic()
            await active.close()
            # The very next thing the standby hears: it received none of the events before.
            took_over = await standby.next(timeout=1.0)
            assert took_over.event == "active"
            assert time.monotonic() - closed_at < 1.0
            assert took_over.json() == {"previous_connection_id": active_id}
            after = await publish(server, "news", "after", count=10)
            received = await sse_events_until(standby, 10)
            assert received == after, "no gap and no duplicate across the hand-over"
            assert len(set(before) | set(received)) == 20

            connections = await eventually(
                lambda: session_connections(server, sid), what="the session after the hand-over"
            )
            assert [(c["id"], c["state"]) for c in connections] == [(standby_id, "active")]
            assert (await get_health(server.url))["websocket_metrics"]["standby_connections"] == 0
    finally:
        await active.close()


@pytest.mark.asyncio
async def test_failover_resumes_what_was_published_while_handing_over(start_server) -> None:
    """Events published right as the active tab goes away reach the standby exactly once."""
    server = start_server(SESSIONSTREAM_SSE_POLICY="failover")
    sid = session_id("failover-race")
    active = SSEClient(server.url, ["news"], session_id=sid)
    await active.__aenter__()
    try:
        async with SSEClient(server.url, ["news"], session_id=sid) as standby:
            assert (await standby.next()).event == "standby"
            before = await publish(server, "news", "before", count=5)
            assert await sse_events_until(active, 5) == before
            await active.close()
            # No wait for the server to notice: these race the hand-over.
            during = await publish(server, "news", "during", count=5)
            await standby.next_of("active", timeout=1.0)
            after = await publish(server, "news", "after", count=5)
            assert await sse_events_until(standby, 10) == during + after
    finally:
        await active.close()


@pytest.mark.asyncio
async def test_failover_over_websocket(start_server) -> None:
    server = start_server(SESSIONSTREAM_WS_POLICY="failover")
    sid = session_id("failover-ws")
    active = await WSClient.open(server.ws_url, channels=["news"], session_id=sid)
    try:
        async with await WSClient.open(server.ws_url, channels=["news"], session_id=sid) as standby:
            assert active.welcome is not None and standby.welcome is not None
            active_id = active.welcome["connection_id"]
            told = await standby.next_type("standby")
            assert told == {"type": "standby", "active_connection_id": active_id}

            # A subscribe while on standby is recorded and attached at promotion.
            await standby.send({"type": "subscribe", "channels": ["extra"], "ref": 1})
            reply = await standby.next_type("subscribed")
            assert reply["channels"] == ["extra"] and reply["resume"] == "live"
            connections = await session_connections(server, sid)
            assert [c["state"] for c in connections] == ["active", "standby"]

            before = await publish(server, "news", "before", count=10)
            assert await ws_events_until(active, 10) == before
            with pytest.raises(asyncio.TimeoutError):
                await standby.next(lambda m: m["type"] == "event", timeout=0.5)

            closed_at = time.monotonic()
            await active.close()
            took_over = await standby.next_type("active", timeout=1.0)
            assert time.monotonic() - closed_at < 1.0
            assert took_over == {"type": "active", "previous_connection_id": active_id}
            after = await publish(server, "news", "after", count=10)
            extra = await publish(server, "extra", "extra")
            assert await ws_events_until(standby, 11) == after + extra

            connections = await eventually(lambda: session_connections(server, sid))
            assert [(c["id"], c["state"]) for c in connections] == [
                (standby.welcome["connection_id"], "active")
            ]
    finally:
        await active.close()


@pytest.mark.asyncio
async def test_failover_picks_the_most_recent_standby_and_counts_it_in_limits(
    start_server,
) -> None:
    server = start_server(SESSIONSTREAM_SSE_POLICY="failover", SESSIONSTREAM_MAX_PER_SESSION="3")
    sid = session_id("failover-order")
    tabs = [SSEClient(server.url, ["news"], session_id=sid) for _ in range(3)]
    try:
        for tab in tabs:
            await tab.__aenter__()
        async with SSEClient(server.url, ["news"], session_id=sid) as refused:
            assert refused.status_code == 429, "standbys hold places under max_per_session"
        for tab in tabs[1:]:
            assert (await tab.next()).event == "standby"
        await tabs[0].close()
        assert (await tabs[2].next_of("active", timeout=1.0)).json() == {
            "previous_connection_id": tabs[0].welcome["connection_id"]
        }
        ids = await publish(server, "news", "x")
        assert (await tabs[2].next_of("message")).id == ids[0]
        states = [c["state"] for c in await session_connections(server, sid)]
        assert states == ["standby", "active"]
        # The older standby got nothing meanwhile: its next frame is its own promotion,
        # and it resumes right after what the second tab took.
        await tabs[2].close()
        took_over = await tabs[1].next(timeout=1.0)
        assert took_over.event == "active"
        assert took_over.json() == {"previous_connection_id": tabs[2].welcome["connection_id"]}
        later = await publish(server, "news", "y")
        assert (await tabs[1].next_of("message")).id == later[0]
    finally:
        for tab in tabs:
            await tab.close()
