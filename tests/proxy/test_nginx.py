"""The stream behaviours through nginx with the shipped site file, as in production:
``sessionstream serve`` (native delivery) behind Debian's nginx on loopback.

The app sends a heartbeat every 2 s and pings an idle WebSocket every 2 s
(``ws_idle_timeout`` 4 s); nginx is given a 5 s ``proxy_read_timeout``, so an idle stream
outlives it only because of those keep-alives.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.integration.support import ServerProcess, SSEClient, WSClient, publish, session_id

from .conftest import Nginx, stream_app_server

HEARTBEAT = 2.0
READ_TIMEOUT = 5.0
ENV = {
    "SESSIONSTREAM_HEARTBEAT_INTERVAL": str(HEARTBEAT),
    "SESSIONSTREAM_WS_IDLE_TIMEOUT": str(2 * HEARTBEAT),
    "SESSIONSTREAM_SHUTDOWN_TIMEOUT": "3",
}


def app_server(**env: str) -> ServerProcess:
    return stream_app_server({**ENV, **env}, cli=True)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = app_server()
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
def proxy(server: ServerProcess, start_nginx: Callable[..., Nginx]) -> Nginx:
    return start_nginx(server.port, read_timeout=f"{int(READ_TIMEOUT)}s")


@pytest.mark.asyncio
async def test_sse_event_arrives_before_the_next_heartbeat(
    server: ServerProcess, proxy: Nginx
) -> None:
    # A proxy that holds frames back may hold the response head too: bound the open.
    client = SSEClient(proxy.url, ["ttfe"], session_id=session_id("ttfe"))
    async with await asyncio.wait_for(client.__aenter__(), HEARTBEAT * 2) as stream:
        assert stream.response_headers is not None
        assert "content-encoding" not in stream.response_headers
        assert stream.response_headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in stream.response_headers
        # Just after a heartbeat the next one is a whole interval away: an event published
        # now must come through before it, or nginx is holding frames back.
        heartbeat = await stream.next(timeout=HEARTBEAT * 2, include_comments=True)
        assert heartbeat.comment is not None, heartbeat
        (event_id,) = await publish(server, "ttfe", {"n": 1})
        sent = time.monotonic()
        first = await stream.next(timeout=HEARTBEAT * 2, include_comments=True)
        elapsed = time.monotonic() - sent
        assert first.comment is None, f"a heartbeat came before the event ({elapsed:.3f} s)"
        assert (first.id, first.json()) == (event_id, {"n": 1})
        assert elapsed < HEARTBEAT / 2, elapsed


@pytest.mark.asyncio
async def test_websocket_upgrade_and_messages(server: ServerProcess, proxy: Nginx) -> None:
    sid = session_id("ws-proxy")
    async with await WSClient.open(proxy.ws_url, channels=["ws-proxy"], session_id=sid) as ws:
        assert ws.welcome is not None
        assert ws.welcome["session_id"] == sid
        (event_id,) = await publish(server, "ws-proxy", "through nginx")
        event = await ws.next_type("event")
        assert (event["id"], event["data"]) == (event_id, "through nginx")
        await ws.send({"type": "ping"})
        assert (await ws.next_type("pong"))["type"] == "pong"


@pytest.mark.asyncio
async def test_resume_with_last_event_id(server: ServerProcess, proxy: Nginx) -> None:
    first, *missed = await publish(server, "resume-proxy", "x", count=3)
    async with SSEClient(
        proxy.url, ["resume-proxy"], session_id=session_id("resume"), last_event_id=first
    ) as stream:
        replayed = await stream.collect(2)
        assert [e.id for e in replayed] == missed
        (live,) = await publish(server, "resume-proxy", "live")
        assert (await stream.next()).id == live
    ws = await WSClient.open(proxy.ws_url, channels=["resume-proxy"], last_event_id=first)
    async with ws:
        ids = [(await ws.next_type("event"))["id"] for _ in range(3)]
        assert ids == [*missed, live]


@pytest.mark.asyncio
async def test_keepalives_hold_idle_streams_past_the_read_timeout(
    server: ServerProcess, proxy: Nginx
) -> None:
    sse = await SSEClient(proxy.url, ["idle-proxy"], session_id=session_id("idle")).__aenter__()
    ws = await WSClient.open(proxy.ws_url, channels=["idle-proxy"])
    try:
        idle_until = time.monotonic() + READ_TIMEOUT + 3
        heartbeats = 0
        while time.monotonic() < idle_until:
            item = await sse.next(timeout=READ_TIMEOUT, include_comments=True)
            assert item.comment is not None, item
            heartbeats += 1
        assert heartbeats >= 3
        # The WebSocket saw only pings meanwhile, which the client answered by itself.
        (event_id,) = await publish(server, "idle-proxy", "still here")
        assert (await sse.next()).id == event_id
        assert (await ws.next_type("event"))["id"] == event_id
    finally:
        await sse.close()
        await ws.close()


@pytest.mark.asyncio
async def test_read_timeout_cuts_a_stream_without_keepalives(
    start_nginx: Callable[..., Nginx],
) -> None:
    """The control for the test above: with heartbeats further apart than nginx's read
    timeout, nginx closes the idle stream."""
    with app_server(SESSIONSTREAM_HEARTBEAT_INTERVAL="60") as quiet:
        proxy = start_nginx(quiet.port, read_timeout="2s")
        async with SSEClient(proxy.url, ["quiet"], session_id=session_id("quiet")) as stream:
            started = time.monotonic()
            # nginx aborts the chunked body: the client sees it cut short.
            with pytest.raises((StopAsyncIteration, httpx.RemoteProtocolError)):
                await stream.next(timeout=10, include_comments=True)
            assert 1.5 < time.monotonic() - started < 6
        assert "upstream timed out" in proxy.error_log()


@pytest.mark.asyncio
async def test_graceful_shutdown_reaches_clients_through_nginx(
    start_nginx: Callable[..., Nginx],
) -> None:
    with app_server() as app:
        proxy = start_nginx(app.port, read_timeout=f"{int(READ_TIMEOUT)}s")
        sse = await SSEClient(proxy.url, ["bye"], session_id=session_id("bye")).__aenter__()
        ws = await WSClient.open(proxy.ws_url, channels=["bye"])
        try:
            (event_id,) = await publish(app, "bye", "last words")
            app.terminate(signal.SIGTERM)
            tail = await sse.expect_end(timeout=5)
            assert [e.id for e in tail if e.id] == [event_id]
            assert (tail[-1].event, tail[-1].json()) == ("close", {"reason": "shutdown"})
            code, reason, seen = await ws.until_closed(timeout=5)
            assert (code, reason) == (1001, "shutdown")
            assert [m["id"] for m in seen if m["type"] == "event"] == [event_id]
            assert app.wait(timeout=10) in (0, -signal.SIGTERM)
        finally:
            await sse.close()
            await asyncio.wait_for(ws.close(), 5)
