"""What each implementation hands over of the bytes a client sends after its request,
and how the response is framed."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import httpx
import pytest

from .support import (
    MODES,
    RawConnection,
    Server,
    get_request,
    handoff_info,
    parse_sse,
    upgrade_request,
    uvicorn_command,
)

StartServer = Callable[..., Server]
HTTP_MODES = ["httptools", "h11"]


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


@pytest.mark.parametrize("mode", HTTP_MODES)
def test_bytes_sent_after_the_response_head_are_handed_over(
    start_server: StartServer, mode: str
) -> None:
    server = start_server(MODES[mode])
    extra = b"EXTRA\r\n\x00bytes\r\nGET / HTTP/1.1\r\n"
    with RawConnection(server) as conn:
        conn.send(get_request("/sse?frames=1&delay=0.5"))
        assert conn.read_head()[0] == 200
        conn.send(extra)  # the app detaches 0.5 s after the head
        info = handoff_info(parse_sse(conn.read_chunk().decode())[0])
        assert parse_sse(conn.read_chunked().decode()) == [{"id": "0", "data": "frame 0"}]
        assert conn.read_to_eof() == b""
    assert info["buffered"] == extra
    server.assert_clean_log()


PIPELINED = get_request("/health")


@pytest.mark.parametrize("mode", HTTP_MODES)
def test_request_sent_during_a_python_response_is_answered_after_it(
    start_server: StartServer, mode: str
) -> None:
    """Bytes kept for a possible handoff are parsed as usual when the app answers itself."""
    server = start_server(MODES[mode])
    with RawConnection(server) as conn:
        # Content-Length makes detach() refuse after 0.5 s; the app then sends the body.
        conn.send(get_request("/sse?cl=1&delay=0.5"))
        status, headers = conn.read_head()
        assert (status, headers["content-length"]) == (200, "1")
        conn.send(PIPELINED)
        assert conn.read_exact(1) == b"x"
        assert conn.read_head()[0] == 200
        assert conn.read_chunked() == b'{"ok": true}'
    assert len(server.refusals()) == 1  # and detach() had refused
    server.assert_clean_log()


def test_pipelined_request_in_the_same_read_h11(start_server: StartServer) -> None:
    """h11 parses nothing after the request: the pipelined one is handed over as bytes."""
    server = start_server(MODES["h11"])
    with RawConnection(server) as conn:
        conn.send(get_request("/sse?frames=1") + PIPELINED)
        assert conn.read_head()[0] == 200
        info = handoff_info(parse_sse(conn.read_chunk().decode())[0])
        assert parse_sse(conn.read_chunked().decode()) == [{"id": "0", "data": "frame 0"}]
        assert conn.read_to_eof() == b""  # uvicorn never answers it
    assert info["buffered"] == PIPELINED
    server.assert_clean_log()


@pytest.mark.parametrize("check", [True, False], ids=["unavailable_reason", "detach"])
def test_pipelined_request_in_the_same_read_httptools(
    start_server: StartServer, check: bool
) -> None:
    """httptools parsed and queued it: refused, and uvicorn answers it afterwards."""
    server = start_server(MODES["httptools"])
    reason = "a pipelined request is queued"
    with RawConnection(server) as conn:
        conn.send(get_request("/sse?frames=1" + ("" if check else "&nocheck=1")) + PIPELINED)
        status, headers = conn.read_head()
        if check:
            assert (status, headers["x-handoff-refused"]) == (409, reason)
            assert json.loads(conn.read_chunked()) == {"reason": reason}
        else:
            # The app answers in Python after detach() refused.
            assert status == 200
            assert parse_sse(conn.read_chunked().decode()) == [{"event": "refused", "data": reason}]
        assert conn.read_head()[0] == 200
        assert conn.read_chunked() == b'{"ok": true}'
    server.assert_clean_log()


@pytest.mark.parametrize("mode", HTTP_MODES)
def test_part_of_a_further_request_in_the_same_read(start_server: StartServer, mode: str) -> None:
    server = start_server(MODES[mode])
    partial = b"GET /heal"
    with RawConnection(server) as conn:
        conn.send(get_request("/sse?frames=0&nocheck=1") + partial)
        assert conn.read_head()[0] == 200
        if mode == "h11":
            info = handoff_info(parse_sse(conn.read_chunk().decode())[0])
            assert info["buffered"] == partial
        else:
            # httptools consumed those bytes into its parser state: they are gone.
            assert parse_sse(conn.read_chunked().decode()) == [
                {"event": "refused", "data": "uvicorn has parsed bytes of a further request"}
            ]
    server.assert_clean_log()


@pytest.mark.parametrize("mode", HTTP_MODES)
def test_bytes_sent_before_the_101_are_handed_over(start_server: StartServer, mode: str) -> None:
    server = start_server(MODES[mode])
    with RawConnection(server) as conn:
        # In the read of the upgrade request (which uvicorn itself would drop) and after.
        conn.send(upgrade_request("/ws?delay=1.0") + b"early-1|")
        time.sleep(0.2)
        conn.send(b"early-2")
        assert conn.read_head()[0] == 101
        opcode, payload = conn.read_ws_frame()
    assert opcode == 0x1
    info = json.loads(payload)
    assert bytes.fromhex(info["buffered"]) == b"early-1|early-2"
    server.assert_clean_log()


@pytest.mark.parametrize("mode", HTTP_MODES)
def test_bytes_before_the_101_reach_an_app_that_accepts(
    start_server: StartServer, mode: str
) -> None:
    """Held while the app decides, then parsed as usual when it accepts through ASGI."""
    server = start_server(MODES[mode])
    frame = masked_text_frame("hello")
    with RawConnection(server) as conn:
        conn.send(upgrade_request("/ws-echo") + frame[:3])
        time.sleep(0.2)
        conn.send(frame[3:])
        status, headers = conn.read_head()
        assert status == 101
        assert headers["server"] == "uvicorn"  # accepted through ASGI
        assert conn.read_ws_frame() == (0x1, b"echo:hello")
        assert conn.read_ws_frame()[0] == 0x8  # close
    server.assert_clean_log()


@pytest.mark.parametrize("mode", HTTP_MODES)
def test_http10_response_framing(start_server: StartServer, mode: str) -> None:
    server = start_server(MODES[mode])
    with RawConnection(server) as conn:
        conn.send(get_request("/sse?frames=2", version="1.0"))
        status, headers = conn.read_head()
        assert status == 200
        if mode == "h11":
            # No Content-Length to an HTTP/1.0 client: the body ends with the connection.
            assert "transfer-encoding" not in headers
            body = conn.read_to_eof()
            framing = "close_delimited"
        else:
            # uvicorn's httptools protocol chunks even for HTTP/1.0; the framing says so.
            assert headers["transfer-encoding"] == "chunked"
            body = conn.read_chunked()
            assert conn.read_to_eof() == b""
            framing = "chunked"
    events = parse_sse(body.decode())
    info = handoff_info(events[0])
    assert (info["framing"], info["http_version"]) == (framing, "1.0")
    assert events[1:] == [{"id": "0", "data": "frame 0"}, {"id": "1", "data": "frame 1"}]
    server.assert_clean_log()


BIG = 32 * 2**20
"""More than loopback's socket buffers hold, so some of it waits in uvicorn's transport."""


def test_detach_waits_until_uvicorn_has_written_everything(start_server: StartServer) -> None:
    server = start_server(MODES["httptools"])
    with (
        httpx.Client(timeout=10.0) as client,
        client.stream("GET", server.url + f"/sse?big={BIG}&frames=2") as response,
    ):
        body = response.read().decode()
    events = parse_sse(body)
    assert events[0] == {"": "x" * BIG}  # everything sent through ASGI, first
    assert handoff_info(events[1])["framing"] == "chunked"
    assert events[2:] == [{"id": "0", "data": "frame 0"}, {"id": "1", "data": "frame 1"}]
    server.assert_clean_log()


def test_detach_gives_up_on_a_client_that_does_not_read(start_server: StartServer) -> None:
    server = start_server(
        uvicorn_command("--http", "tests.server.handoff_app:QuickDrainHttpToolsProtocol")
    )
    with RawConnection(server) as conn:
        conn.send(get_request(f"/sse?big={BIG}&frames=1"))
        time.sleep(2.5)  # the protocol class waits 1 s
        assert conn.read_head()[0] == 200
        reason = "the client did not read what was already sent within 1 s"
        assert conn.read_chunked().endswith(f"event: refused\ndata: {reason}\n\n".encode())
    assert server.refusals() == [reason]
    server.assert_clean_log()
