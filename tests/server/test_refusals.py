"""When a connection cannot be handed off, the app is told why and can answer in Python."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from .support import MODES, RawConnection, Server, client_ssl_context, get_request, parse_sse

StartServer = Callable[..., Server]
HTTP_MODES = ["httptools", "h11"]


@pytest.fixture(scope="module", params=HTTP_MODES)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(MODES[request.param])
    try:
        yield server.start()
    finally:
        server.stop()


def test_head_request(server: Server) -> None:
    response = httpx.head(server.url + "/sse", timeout=5.0)
    assert response.status_code == 409
    assert response.headers["x-handoff-refused"] == "a HEAD response has no body"


def test_before_the_response_starts(server: Server) -> None:
    response = server.get("/sse?early=1")
    assert response.status_code == 409
    assert response.json() == {
        "reason": "the response has not started: send http.response.start first"
    }


def test_after_the_response_completed(server: Server) -> None:
    assert server.get("/complete").text == "done"
    assert server.refusals() == ["the response is already complete"]


def test_response_with_a_content_length(server: Server) -> None:
    assert server.get("/sse?cl=1").text == "x"
    assert server.refusals() == [
        "the response head declares a Content-Length"
        if "HttpToolsHandoffProtocol" in " ".join(server.command)
        else "the response has a fixed length (Content-Length, 204 or 304)"
    ]


def test_client_disconnected(server: Server) -> None:
    with RawConnection(server) as conn:
        conn.send(get_request("/sse?delay=0.5"))
        assert conn.read_head()[0] == 200
    deadline = time.monotonic() + 5.0
    refusals: list[str] = []
    while not refusals and time.monotonic() < deadline:
        time.sleep(0.2)
        refusals = server.refusals()
    assert refusals == ["the client disconnected"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"hello", "the request body is not fully received"),
        (b"helloworld", "the app has not read the whole request body"),
    ],
)
def test_request_body(server: Server, body: bytes, reason: str) -> None:
    with RawConnection(server) as conn:
        conn.send(b"POST /sse?frames=0 HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n" + body)
        assert conn.read_head()[0] == 200
        assert parse_sse(conn.read_chunked().decode()) == [{"event": "refused", "data": reason}]
    assert server.refusals() == [reason]


def test_websocket_already_accepted(server: Server) -> None:
    with connect(server.ws_url + "/ws?accept_first=1", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10)) == {
            "refused": "the WebSocket handshake is already complete"
        }


def test_server_log_is_clean(server: Server) -> None:
    # Last in this module: no refusal above made uvicorn log an error.
    server.assert_clean_log()


@pytest.mark.parametrize("mode", HTTP_MODES)
def test_tls_connections(
    start_server: StartServer, certificate: tuple[Path, Path], mode: str
) -> None:
    cert, key = certificate
    server = start_server(
        [*MODES[mode], "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)], tls=True
    )
    reason = "the connection uses TLS: its bytes are records only Python's ssl layer can write"
    probe = server.get("/probe").json()
    assert (probe["extension"], probe["reason"]) == (True, reason)
    response = server.get("/sse?nocheck=1")  # detach() itself refuses too
    assert parse_sse(response.text) == [{"event": "refused", "data": reason}]
    with connect(server.ws_url + "/ws", ssl=client_ssl_context(), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"delivery": "python", "reason": reason}
    server.assert_clean_log()


@pytest.mark.parametrize("where", ["header", "url"])
def test_an_oversized_request_head_is_refused(server: Server, where: str) -> None:
    # A client cannot make the server hold megabytes of headers per connection, across
    # thousands of connections. httptools has no bound of its own: our class applies
    # uvicorn's --h11-max-incomplete-event-size (16 KiB) to the head; h11 applies it
    # while a head is incomplete, so the big head is sent in two reads.
    big = b"y" * 40_000
    if where == "header":
        head = b"GET /sse HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\n\r\n"
    else:
        head = b"GET /sse?pad=" + big + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    with RawConnection(server) as conn:
        conn.send(head[:20_000])
        time.sleep(0.2)
        try:
            conn.send(head[20_000:])
        except OSError:
            pass  # refused and closed before the rest arrived
        status, _ = conn.read_head()
    expected = 431 if "HttpToolsHandoffProtocol" in " ".join(server.command) else 400
    assert status == expected
    # A head well under the bound is served as before.
    assert httpx.get(server.url + "/complete", headers={"X-Big": "y" * 8_000}).text == "done"
