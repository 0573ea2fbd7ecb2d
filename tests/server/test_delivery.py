"""Bytes written on a detached socket reach the client intact, however the server runs,
and uvicorn forgets detached connections."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .support import (
    MODES,
    RawConnection,
    Server,
    get_request,
    handoff_info,
    parse_sse,
    upgrade_request,
)

StartServer = Callable[..., Server]


@pytest.mark.parametrize("mode", list(MODES))
def test_sse_stream_written_on_the_detached_socket(start_server: StartServer, mode: str) -> None:
    server = start_server(MODES[mode])
    with (
        httpx.Client(timeout=10.0) as client,
        client.stream("GET", server.url + "/sse?frames=3") as response,
    ):
        assert response.status_code == 200
        # The head went through ASGI (and so through any middleware).
        assert response.headers["x-served-by"] == "asgi"
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["transfer-encoding"] == "chunked"
        # httpx raises if the chunked body does not end with its terminating chunk.
        body = response.read().decode()
    events = parse_sse(body)
    assert handoff_info(events[0]) == {
        "framing": "chunked",
        "buffered": b"",
        "http_version": "1.1",
        "second": "the connection was already detached",
    }
    assert events[1:] == [{"id": str(i), "data": f"frame {i}"} for i in range(3)]
    assert server.get("/health").status_code == 200
    server.assert_clean_log()


@pytest.mark.parametrize("mode", list(MODES))
def test_closing_the_duplicate_ends_the_connection(start_server: StartServer, mode: str) -> None:
    """The server let its own descriptor go: the app's close() is the TCP close."""
    server = start_server(MODES[mode])
    with RawConnection(server, timeout=5.0) as conn:
        conn.send(get_request("/sse?frames=1"))
        assert conn.read_head()[0] == 200
        events = parse_sse(conn.read_chunked().decode())
        assert conn.read_to_eof() == b""
    assert events[1:] == [{"id": "0", "data": "frame 0"}]


@pytest.mark.parametrize("mode", list(MODES))
def test_websocket_handshake_written_on_the_detached_socket(
    start_server: StartServer, mode: str
) -> None:
    server = start_server(MODES[mode])
    with connect(server.ws_url + "/ws?x=1&y=%20z", open_timeout=10) as ws:
        # The 101 is the test app's, not uvicorn's (which adds Server and Date).
        assert ws.response is not None
        assert "server" not in ws.response.headers
        assert "sec-websocket-extensions" not in ws.response.headers
        info = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # the app closes its descriptor after one frame
    assert info == {
        "framing": "websocket",
        "buffered": "",
        "http_version": "1.1",
        "request_line": "GET /ws?x=1&y=%20z HTTP/1.1",
    }
    assert '"WebSocket /ws?x=1&y=%20z" [detached]' in server.log()
    server.assert_clean_log()


@pytest.mark.parametrize("mode", ["httptools", "h11", "sessionstream-serve", "gunicorn"])
def test_sigterm_does_not_wait_for_detached_connections(
    start_server: StartServer, mode: str
) -> None:
    server = start_server(MODES[mode])
    with RawConnection(server) as sse, RawConnection(server) as ws:
        sse.send(get_request("/sse?frames=1&hold=60"))
        assert sse.read_head()[0] == 200
        assert handoff_info(parse_sse(sse.read_chunk().decode())[0])["framing"] == "chunked"
        assert parse_sse(sse.read_chunk().decode()) == [{"id": "0", "data": "frame 0"}]
        ws.send(upgrade_request("/ws?hold=60"))
        assert ws.read_head()[0] == 101
        assert ws.read_ws_frame()[0] == 0x1

        started = time.monotonic()
        server.terminate()
        server.wait(20)
        elapsed = time.monotonic() - started
        # Open until the process exited, then closed with it.
        assert sse.read_to_eof() == b""
        assert ws.read_to_eof() == b""
    # uvicorn would wait up to --timeout-graceful-shutdown (15 s) for a connection it serves.
    assert elapsed < 3.0, server.log()
    assert "Waiting for connections to close" not in server.log()
    assert "Waiting for background tasks" not in server.log()
    server.assert_clean_log()


@pytest.mark.parametrize("mode", ["httptools", "h11"])
def test_limit_concurrency_does_not_count_detached_connections(
    start_server: StartServer, mode: str
) -> None:
    server = start_server([*MODES[mode], "--limit-concurrency", "3"])
    # Connections uvicorn serves do count: three idle ones fill the limit.
    idle = [RawConnection(server) for _ in range(3)]
    try:
        time.sleep(0.3)
        assert server.get("/health").status_code == 503
    finally:
        for connection in idle:
            connection.close()
    time.sleep(0.3)

    # One at a time: a connection counts from the moment uvicorn accepts it.
    streams: list[RawConnection] = []
    try:
        for _ in range(4):
            stream = RawConnection(server)
            streams.append(stream)
            stream.send(get_request("/sse?frames=0&hold=30"))
            assert stream.read_head()[0] == 200
            handoff_info(parse_sse(stream.read_chunk().decode())[0])
        assert server.get("/health").status_code == 200
    finally:
        for stream in streams:
            stream.close()


def test_limit_max_requests_counts_handed_off_requests(start_server: StartServer) -> None:
    server = start_server([*MODES["httptools"], "--limit-max-requests", "3"])
    # /health from start() was the first; two handoffs reach the limit.
    for _ in range(2):
        with RawConnection(server) as conn:
            conn.send(get_request("/sse?frames=0"))
            assert conn.read_head()[0] == 200
            conn.read_chunked()
    server.wait(5)
    assert "Maximum request limit of 3 exceeded" in server.log()
    server.assert_clean_log()


@pytest.mark.parametrize("mode", ["sessionstream-serve", "gunicorn"])
def test_session_ids_in_a_request_target_are_redacted_from_the_log(
    start_server: StartServer, mode: str
) -> None:
    # gunicorn writes no access log unless asked to.
    extra = ["--access-logfile", "-"] if mode == "gunicorn" else []
    server = start_server(MODES[mode] + extra)
    secret = "s3cr3t-session-id-0123456789"
    assert server.get(f"/health?session_id={secret}&x=1").status_code == 200
    with connect(server.ws_url + f"/ws?session_id={secret}", open_timeout=10) as ws:
        ws.recv(timeout=10)

    deadline = time.monotonic() + 5
    while "/ws?session_id=[redacted]" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert "/health?session_id=[redacted]&x=1" in log
    assert "/ws?session_id=[redacted]" in log
    assert secret not in log
