"""Which delivery path a stream takes, and the seams of the handoff to the native engine.

Each server here is started with explicit protocol classes, so these tests do not take
the suite's ``delivery`` parameter.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect

from .support import ServerProcess, SSEClient, WSClient, eventually, publish, session_id

APP = "tests.integration.stream_app:app"
HTTPTOOLS = "sessionstream.server:HttpToolsHandoffProtocol"
H11 = "sessionstream.server:H11HandoffProtocol"
SANSIO = "sessionstream.server:WebSocketsSansIOHandoffProtocol"


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[ServerProcess] = []

    def start(*args: str, **env: str) -> ServerProcess:
        server = ServerProcess(APP, env, server_args=list(args))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def _open(server: ServerProcess) -> dict[str, dict[str, int]]:
    return server.health()["delivery"]["open"]


@pytest.mark.asyncio
@pytest.mark.parametrize("http", [HTTPTOOLS, H11], ids=["httptools", "h11"])
async def test_both_http_implementations_hand_streams_to_the_engine(serve, http: str) -> None:
    server = serve("--http", http, "--ws", SANSIO)
    channel = f"modes-{session_id('m')}"
    async with SSEClient(server.url, [channel]) as sse:
        ws = await WSClient.open(server.ws_url, channels=[channel])
        assert _open(server)["native"] == {"sse": 1, "websocket": 1}
        assert _open(server)["python"] == {"sse": 0, "websocket": 0}
        (event_id,) = await publish(server, channel, {"n": 1})
        assert (await sse.next()).id == event_id
        assert (await ws.next_type("event"))["id"] == event_id
        await ws.close()
    await eventually(lambda: _open(server)["native"] == {"sse": 0, "websocket": 0})
    assert "ERROR" not in server.log()


@pytest.mark.asyncio
async def test_an_unsupported_websocket_implementation_falls_back_to_python(serve) -> None:
    # uvicorn's legacy websockets class offers no handoff: WebSockets stay in Python while
    # SSE streams of the same server are handed off.
    server = serve("--http", HTTPTOOLS, "--ws", "websockets")
    channel = f"fallback-{session_id('f')}"
    async with SSEClient(server.url, [channel]) as sse:
        ws = await WSClient.open(server.ws_url, channels=[channel])
        assert _open(server) == {
            "native": {"sse": 1, "websocket": 0},
            "python": {"sse": 0, "websocket": 1},
        }
        (event_id,) = await publish(server, channel, "x")
        assert (await sse.next()).id == event_id
        assert (await ws.next_type("event"))["id"] == event_id
        await ws.close()
    reasons = server.health()["delivery"]["fallback_reasons"]
    assert any("handoff extension" in reason for reason in reasons), reasons


@pytest.mark.asyncio
async def test_the_mode_is_logged_at_start_and_reported_in_health(serve) -> None:
    plain = serve()
    # A warning, so it shows under uvicorn's default logging: the fix is actionable.
    assert "python delivery, native engine idle" in plain.log(), plain.log()
    assert plain.health()["delivery"]["mode"] == "python"
    native = serve("--log-level", "info", "--http", HTTPTOOLS, "--ws", SANSIO)
    assert "native delivery, 1 engine thread" in native.log(), native.log()
    assert "python delivery" not in native.log()
    assert native.health()["delivery"]["mode"] == "native"
    off = serve("--http", HTTPTOOLS, "--ws", SANSIO, SESSIONSTREAM_NATIVE_DELIVERY="false")
    async with SSEClient(off.url, ["off"]):
        assert _open(off) == {
            "native": {"sse": 0, "websocket": 0},
            "python": {"sse": 1, "websocket": 0},
        }
    assert off.health()["delivery"]["mode"] == "python"


@pytest.mark.asyncio
async def test_third_party_clients_on_the_handed_off_path(serve) -> None:
    server = serve("--http", HTTPTOOLS, "--ws", SANSIO)
    channel = f"clients-{session_id('c')}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None)) as client:
        url = f"{server.url}/stream/sse?channel={channel}"
        async with aconnect_sse(client, "GET", url) as source:
            events = source.aiter_sse()
            welcome = await anext(events)
            assert welcome.event == "welcome" and welcome.id
            async with connect(f"{server.ws_url}/stream/ws?channel={channel}") as ws:
                first = json.loads(await ws.recv())
                assert first[0]["type"] == "welcome"
                (event_id,) = await publish(server, channel, {"third": "party"})
                sse_event = await anext(events)
                assert (sse_event.id, json.loads(sse_event.data)) == (event_id, {"third": "party"})
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    events_in_frame = [m for m in frame if m["type"] == "event"]
                    if events_in_frame:
                        assert events_in_frame[0]["id"] == event_id
                        break
                # Protocol pings of the websockets client get their pongs from the engine.
                latency = await asyncio.wait_for(await ws.ping(), 5)
                assert latency >= 0


@pytest.mark.asyncio
@pytest.mark.parametrize("http", [HTTPTOOLS, H11], ids=["httptools", "h11"])
async def test_bytes_sent_right_after_the_request_do_not_break_the_stream(serve, http: str) -> None:
    server = serve("--http", http, "--ws", SANSIO)
    channel = f"early-{session_id('e')}"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET /stream/sse?channel={channel} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    if http == HTTPTOOLS:
        # httptools parses bytes that arrive before the response starts as the next
        # request (garbage there is a 400, as HTTP says); later ones are held for the engine.
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    # An SSE client has nothing to say; whatever it sends while the stream is handed over
    # is given to the engine, which discards it, and the stream goes on.
    writer.write(b"unexpected bytes after the request")
    await writer.drain()
    if http == H11:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    else:
        head = b"HTTP/1.1 200 (read above)"
    assert head.startswith(b"HTTP/1.1 200"), head
    body = await asyncio.wait_for(reader.readuntil(b"event: welcome"), 5)
    assert b"retry:" in body
    await eventually(lambda: _open(server)["native"]["sse"] == 1)
    writer.write(b"more bytes once the engine owns the socket")
    await writer.drain()
    (event_id,) = await publish(server, channel, "after")
    rest = await asyncio.wait_for(reader.readuntil(b"data: after\n\n"), 5)
    assert event_id.encode() in rest
    writer.close()


@pytest.mark.asyncio
async def test_a_handoff_during_shutdown_never_hangs_or_loses_a_client(serve) -> None:
    server = serve("--http", HTTPTOOLS, "--ws", SANSIO, SESSIONSTREAM_SHUTDOWN_TIMEOUT="2")
    channel = f"late-{session_id('l')}"
    open_streams = [await SSEClient(server.url, [channel]).__aenter__() for _ in range(20)]

    async def latecomer() -> int:
        # Streams opened while the server drains: refused (503) or told to come back.
        async with httpx.AsyncClient(timeout=5.0) as client:
            try:
                async with client.stream("GET", f"{server.url}/stream/sse?channel={channel}") as r:
                    async for _ in r.aiter_raw():
                        pass
                    return r.status_code
            except httpx.TransportError:
                return 0

    late = [asyncio.create_task(latecomer()) for _ in range(20)]
    await asyncio.sleep(0.01)
    started = time.monotonic()
    server.terminate(signal.SIGTERM)
    for stream in open_streams:
        close = (await stream.expect_end(timeout=10))[-1]
        assert (close.event, close.json()["reason"]) == ("close", "shutdown")
        await stream.close()
    statuses = await asyncio.gather(*late)
    # uvicorn re-raises the signal after its graceful shutdown.
    assert server.wait(15) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 10
    assert set(statuses) <= {200, 503, 0}, statuses
    assert "Traceback" not in server.log()
