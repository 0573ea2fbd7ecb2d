"""SSE endpoint: headers, framing, heartbeats, sessions, clean-up (real uvicorn, httpx)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from httpx_sse import aconnect_sse

from .support import (
    ServerProcess,
    SSEClient,
    eventually,
    get_health,
    health_key,
    publish,
    session_id,
    subscribers,
)


@pytest.mark.asyncio
async def test_headers_retry_and_welcome(stream_server: ServerProcess) -> None:
    sid = session_id("headers")
    async with SSEClient(stream_server.url, ["news"], session_id=sid) as stream:
        headers = stream.response_headers
        assert headers is not None
        assert headers["content-type"] == "text/event-stream"
        assert headers["cache-control"] == "no-cache, no-transform"
        assert headers["x-accel-buffering"] == "no"
        assert headers["x-session-id"] == sid
        assert "set-cookie" not in headers  # the id was given, nothing to remember
        assert stream.welcome is not None
        assert stream.welcome["session_id"] == sid
        assert stream.welcome["resume"] == "live"
        assert set(stream.welcome["channels"]) == {"news", f"session:{sid}"}


@pytest.mark.asyncio
async def test_retry_field_is_sent_first(stream_server: ServerProcess) -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        async with client.stream("GET", stream_server.url + "/stream/sse") as response:
            first = await anext(response.aiter_raw())
    # The welcome comes first and carries the stream's position as its own id.
    assert re.match(rb"id: [0-9a-f]+-\d+\nretry: 3000\nevent: welcome\n", first), first


@pytest.mark.asyncio
async def test_a_client_that_only_keeps_ids_of_data_events_resumes_from_the_welcome(
    stream_server: ServerProcess,
) -> None:
    # Regression: clients such as the npm eventsource package ignore an id in a block
    # without data. A client that drops before the first event must still resume.
    channel = f"welcome-id-{session_id('w')}"
    async with SSEClient(stream_server.url, [channel]) as stream:
        assert stream.welcome is not None
        position = stream.welcome_id
    assert position, "the welcome carries no id"
    (missed,) = await publish(stream_server, channel, {"n": 1})
    async with SSEClient(stream_server.url, [channel], last_event_id=position) as stream:
        assert stream.welcome is not None and stream.welcome["resume"] == "exact"
        event = await stream.next()
        assert (event.id, event.json()) == (missed, {"n": 1})


@pytest.mark.asyncio
async def test_event_fields_and_multiline_data(stream_server: ServerProcess) -> None:
    channel = f"multi-{session_id('m')}"
    async with SSEClient(stream_server.url, [channel]) as stream:
        (text_id,) = await publish(
            stream_server, channel, "line one\nline two\n\nline four", raw=True, event="note"
        )
        (json_id,) = await publish(stream_server, channel, {"a": [1, 2], "b": "x\ny"})
        note = await stream.next()
        assert (note.id, note.event, note.data) == (
            text_id,
            "note",
            "line one\nline two\n\nline four",
        )
        obj = await stream.next()
        assert (obj.id, obj.event) == (json_id, "message")
        assert obj.json() == {"a": [1, 2], "b": "x\ny"}


@pytest.mark.asyncio
async def test_ids_are_ordered_across_channels(stream_server: ServerProcess) -> None:
    a, b = f"a-{session_id('o')}", f"b-{session_id('o')}"
    async with SSEClient(stream_server.url, [a, b]) as stream:
        ids = []
        for i in range(6):
            ids += await publish(stream_server, a if i % 2 else b, {"i": i})
        received = await stream.collect(6)
        assert [e.id for e in received] == ids
        assert [e.json()["i"] for e in received] == list(range(6))


@pytest.mark.asyncio
async def test_httpx_sse_client_reads_the_stream(stream_server: ServerProcess) -> None:
    channel = f"lib-{session_id('l')}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None)) as client:
        url = stream_server.url + "/stream/sse"
        async with aconnect_sse(client, "GET", url, params={"channel": channel}) as source:
            events = source.aiter_sse()

            async def next_event():  # httpx-sse yields id-only blocks as empty messages
                while True:
                    event = await asyncio.wait_for(anext(events), 5)
                    if event.data:
                        return event

            welcome = await next_event()
            assert welcome.event == "welcome"
            assert source.response.headers["content-type"] == "text/event-stream"
            (event_id,) = await publish(
                stream_server, channel, {"hello": "world"}, event="greeting"
            )
            event = await next_event()
            assert (event.id, event.event, event.json()) == (
                event_id,
                "greeting",
                {"hello": "world"},
            )


@pytest.mark.asyncio
async def test_heartbeat_comments_on_idle_stream(start_server) -> None:
    server = start_server(SESSIONSTREAM_HEARTBEAT_INTERVAL="0.4")
    async with SSEClient(server.url, ["quiet"]) as stream:
        first = await stream.next(timeout=3, include_comments=True)
        second = await stream.next(timeout=3, include_comments=True)
        assert first.comment == "ping" and second.comment == "ping"


@pytest.mark.asyncio
async def test_generated_session_is_set_as_cookie_and_reused(stream_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client:
        first = await client.get("/stream/session")
        generated = first.json()
        assert generated["generated"] is True
        cookie = first.cookies.get("sessionstream_sid")
        assert cookie == generated["session_id"]
        again = (await client.get("/stream/session")).json()  # the cookie is sent back
        assert again == {**generated, "generated": False}


@pytest.mark.asyncio
async def test_client_that_goes_away_is_cleaned_up_at_once(stream_server: ServerProcess) -> None:
    channel = f"gone-{session_id('g')}"
    stream = SSEClient(stream_server.url, [channel])
    await stream.__aenter__()
    assert await subscribers(stream_server, channel) == 1
    await stream.close()
    # No publish, no heartbeat needed: the disconnect itself releases the connection.
    await eventually(lambda: _zero(stream_server, channel), timeout=1.0, what="release")


async def _zero(server: ServerProcess, channel: str) -> bool:
    return await subscribers(server, channel) == 0


@pytest.mark.asyncio
async def test_private_channel_reaches_every_tab_of_the_session(
    stream_server: ServerProcess,
) -> None:
    sid, other = session_id("tabs"), session_id("other")
    async with (
        SSEClient(stream_server.url, session_id=sid) as tab1,
        SSEClient(stream_server.url, session_id=sid) as tab2,
        SSEClient(stream_server.url, session_id=other) as stranger,
    ):
        (event_id,) = await publish(stream_server, f"session:{sid}", {"to": "you"})
        assert (await tab1.next()).id == event_id
        assert (await tab2.next()).id == event_id
        with pytest.raises(asyncio.TimeoutError):
            await stranger.next(timeout=0.3)


@pytest.mark.asyncio
async def test_disconnect_one_channel_of_the_session(stream_server: ServerProcess) -> None:
    sid = session_id("dc")
    keep, drop = f"keep-{sid}", f"drop-{sid}"
    async with (
        SSEClient(stream_server.url, [keep, drop], session_id=sid) as tab1,
        SSEClient(stream_server.url, [drop], session_id=session_id("bystander")) as bystander,
        httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client,
    ):
        response = await client.post(
            "/stream/session/disconnect", params={"channel": drop}, headers={"X-Session-ID": sid}
        )
        assert response.json() == {"channel": drop, "disconnected_connections": 1}
        await publish(stream_server, drop, "dropped", raw=True)
        (kept,) = await publish(stream_server, keep, "kept", raw=True)
        assert (await tab1.next()).id == kept  # the dropped channel's event never came
        assert (await bystander.next()).data == "dropped"  # other sessions untouched


@pytest.mark.asyncio
async def test_cleanup_closes_every_connection_of_the_session(stream_server: ServerProcess) -> None:
    sid = session_id("cleanup")
    async with (
        SSEClient(stream_server.url, ["x"], session_id=sid) as tab1,
        SSEClient(stream_server.url, ["x"], session_id=sid) as tab2,
        SSEClient(stream_server.url, ["x"], session_id=session_id("survivor")) as survivor,
        httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client,
    ):
        response = await client.post("/stream/session/cleanup", headers={"X-Session-ID": sid})
        assert response.json()["closed_connections"] == 2
        for tab in (tab1, tab2):
            close = (await tab.expect_end())[-1]
            assert (close.event, close.json()) == ("close", {"reason": "session_cleanup"})
        (event_id,) = await publish(stream_server, "x", "still here", raw=True)
        assert (await survivor.next()).id == event_id


@pytest.mark.asyncio
async def test_beacon_closes_only_the_callers_connection(stream_server: ServerProcess) -> None:
    sid = session_id("beacon")
    async with (
        SSEClient(stream_server.url, session_id=sid) as tab,
        httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client,
    ):
        assert tab.welcome is not None
        connection_id = tab.welcome["connection_id"]
        foreign = await client.post(
            f"/stream/connections/{connection_id}/close",
            headers={"X-Session-ID": session_id("x")},
        )
        assert foreign.status_code == 404
        assert foreign.json()["error"] == "unknown_connection"
        own = await client.post(
            f"/stream/connections/{connection_id}/close", headers={"X-Session-ID": sid}
        )
        assert own.json() == {"closed": True, "connection_id": connection_id}
        close = (await tab.expect_end())[-1]
        assert close.json() == {"reason": "client_gone"}
    health = await get_health(stream_server.url)
    assert health_key(sid) not in health["sessions"]
