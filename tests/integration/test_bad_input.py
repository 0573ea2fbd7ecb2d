"""Bad input gets a clear error frame or 4xx, and leaves the server's state consistent."""

from __future__ import annotations

import asyncio
import json
import struct
from urllib.parse import urlsplit

import httpx
import pytest

from .support import (
    ServerProcess,
    SSEClient,
    WSClient,
    eventually,
    get_health,
    session_id,
    subscribers,
)

BAD_SESSION_IDS = ["short", "has space in it", "semi;colon-12345", "x" * 200, "session:abc12345"]


async def _baseline(server: ServerProcess) -> int:
    return (await get_health(server.url))["websocket_metrics"]["active_connections"]


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", BAD_SESSION_IDS)
async def test_malformed_session_id_is_refused_over_sse(
    stream_server: ServerProcess, bad: str
) -> None:
    before = await _baseline(stream_server)
    for how in ("query", "header", "cookie"):
        kwargs: dict[str, object] = {}
        if how == "query":
            kwargs["session_id"] = bad
            kwargs["session_query"] = True
        elif how == "header":
            kwargs["headers"] = {"X-Session-ID": bad}
        else:
            kwargs["headers"] = {"Cookie": f"sessionstream_sid={bad}"}
        async with SSEClient(stream_server.url, ["x"], **kwargs) as refused:  # type: ignore[arg-type]
            assert refused.status_code == 400, how
            body = await refused.body_json()
            if how == "query":  # refused before it is even looked at (not opted in)
                assert body["error"] == "session_id_in_url"
                continue
            assert body["error"] == "invalid_session_id"
            assert how in body["detail"] and "8-128" in body["detail"]
    assert await _baseline(stream_server) == before


@pytest.mark.asyncio
async def test_malformed_session_id_closes_websocket_with_policy_code(
    stream_server: ServerProcess,
) -> None:
    ws = await WSClient.open(stream_server.ws_url, session_id="bad id!", expect_welcome=False)
    code, reason, _ = await ws.until_closed()
    assert code == 1008 and reason.startswith("invalid_session_id")


@pytest.mark.asyncio
async def test_malformed_session_id_on_session_routes(stream_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client:
        for method, path in [
            ("GET", "/stream/session"),
            ("POST", "/stream/session/cleanup"),
            ("POST", "/stream/session/disconnect?channel=x"),
        ]:
            response = await client.request(method, path, headers={"X-Session-ID": "nope"})
            assert response.status_code == 400
            assert response.json()["error"] == "invalid_session_id"


@pytest.mark.asyncio
async def test_another_sessions_private_channel_is_forbidden(stream_server: ServerProcess) -> None:
    victim, attacker = session_id("victim"), session_id("attacker")
    async with SSEClient(stream_server.url, session_id=victim) as victim_stream:
        assert victim_stream.status_code == 200
        async with SSEClient(
            stream_server.url, [f"session:{victim}"], session_id=attacker
        ) as refused:
            assert refused.status_code == 403
            body = await refused.body_json()
            assert body["error"] == "forbidden_channel"
            assert body["channel"] == f"session:{victim}"

        ws = await WSClient.open(
            stream_server.ws_url,
            channels=[f"session:{victim}"],
            session_id=attacker,
            expect_welcome=False,
        )
        code, reason, _ = await ws.until_closed()
        assert code == 1008 and reason == f"forbidden_channel: session:{victim}"

        async with await WSClient.open(stream_server.ws_url, session_id=attacker) as ws:
            await ws.send({"type": "subscribe", "channels": ["ok", f"session:{victim}"], "ref": 9})
            error = await ws.next_type("error")
            assert error["error"] == "forbidden_channel" and error["ref"] == 9
            # All or nothing: the allowed channel of the refused request was not added either.
            assert await subscribers(stream_server, "ok") == 0
            assert await subscribers(stream_server, f"session:{victim}") == 1  # the victim only


@pytest.mark.asyncio
async def test_authorize_hook_refusal(stream_server: ServerProcess) -> None:
    async with SSEClient(stream_server.url, ["forbidden:secrets"]) as refused:
        assert refused.status_code == 403
        assert "not authorized" in (await refused.body_json())["detail"]


@pytest.mark.asyncio
@pytest.mark.parametrize("channel", ["has space", "", "x" * 300, "tab\there"])
async def test_invalid_channel_names(stream_server: ServerProcess, channel: str) -> None:
    async with SSEClient(stream_server.url, [channel]) as refused:
        assert refused.status_code == 400
        assert (await refused.body_json())["error"] == "invalid_channel"
    async with await WSClient.open(stream_server.ws_url) as ws:
        await ws.send({"type": "subscribe", "channels": [channel]})
        assert (await ws.next_type("error"))["error"] == "invalid_channel"


@pytest.mark.asyncio
async def test_bad_websocket_messages_get_error_frames_and_the_socket_survives(
    stream_server: ServerProcess,
) -> None:
    before = await _baseline(stream_server)
    channel = f"survivor-{session_id('s')}"
    async with await WSClient.open(stream_server.ws_url, channels=[channel]) as ws:
        cases = [
            ("{not json", "invalid_json"),
            ('{"type": "ping", "n": ' + "1" * 5000 + "}", "invalid_json"),  # int over 4300 digits
            ("[1, 2, 3]", "invalid_message"),
            (json.dumps({"no": "type"}), "invalid_message"),
            (json.dumps({"type": 42}), "invalid_message"),
            (json.dumps({"type": "teleport"}), "unknown_type"),
            (json.dumps({"type": "subscribe", "channels": "not-a-list"}), "invalid_message"),
            (json.dumps({"type": "subscribe", "channels": [1, 2]}), "invalid_message"),
            (json.dumps({"type": "unsubscribe"}), "invalid_message"),
            ("x" * 70_000, "message_too_large"),
            (json.dumps({"type": "ping", "pad": "é" * 40_000}), "message_too_large"),
        ]
        for raw, expected in cases:
            await ws.send(raw)
            error = await ws.next_type("error")
            assert error["error"] == expected, (raw[:40], error)
            assert error["detail"]
        await ws.connection.send(b"\x00\x01binary")
        assert (await ws.next_type("error"))["error"] == "binary_not_supported"
        unknown = json.dumps({"type": "teleport"})
        await ws.send(unknown)
        assert "known: " in (await ws.next_type("error"))["detail"]
        # Still the same, working connection.
        await ws.send({"type": "ping"})
        assert await ws.next_type("pong")
        assert await subscribers(stream_server, channel) == 1
    assert await _baseline(stream_server) == before


def _client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    # Masked with a zero key, which leaves the payload as it is.
    assert len(payload) < 126
    return (
        struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | len(payload)) + b"\0" * 4 + payload
    )


async def _read_close_code(reader: asyncio.StreamReader) -> int:
    """Reads server frames until the close frame; its status code."""
    while True:
        first, second = await asyncio.wait_for(reader.readexactly(2), 10.0)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fragments",
    [
        [(0x1, b'{"type": "ping", "x": "\xc3\x28"}', True)],
        # A sequence left unfinished by an empty final fragment.
        [(0x1, b"\xc4", False), (0x0, b"", True)],
    ],
    ids=["invalid-sequence", "cut-off-by-empty-final-fragment"],
)
async def test_websocket_text_that_is_not_utf8_fails_the_connection_with_1007(
    stream_server: ServerProcess, fragments: list[tuple[int, bytes, bool]]
) -> None:
    before = await _baseline(stream_server)
    address = urlsplit(stream_server.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(
            f"GET /stream/ws HTTP/1.1\r\nHost: {address.netloc}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-Session-ID: {session_id('u')}\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
        assert head.startswith(b"HTTP/1.1 101"), head
        for opcode, payload, fin in fragments:
            writer.write(_client_frame(opcode, payload, fin=fin))
        await writer.drain()
        assert await _read_close_code(reader) == 1007
    finally:
        writer.close()
    await _assert_still_serving(stream_server)

    async def back_to_baseline() -> bool:
        return await _baseline(stream_server) == before

    await eventually(back_to_baseline, what="the connection to be released")


@pytest.mark.asyncio
async def test_private_channel_cannot_be_unsubscribed(stream_server: ServerProcess) -> None:
    sid = session_id("keep")
    async with await WSClient.open(stream_server.ws_url, session_id=sid) as ws:
        await ws.send({"type": "unsubscribe", "channel": f"session:{sid}"})
        assert (await ws.next_type("error"))["error"] == "invalid_channel"
        assert await subscribers(stream_server, f"session:{sid}") == 1


@pytest.mark.asyncio
async def test_publish_endpoint_errors_are_json(stream_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client:
        response = await client.post("/stream/connections/not-a-number/close")
        assert response.status_code == 422
        response = await client.post("/stream/session/disconnect")  # channel missing
        assert response.status_code == 422


@pytest.mark.asyncio
async def test_a_flooding_websocket_client_is_rate_limited_and_then_served_again(
    start_server,
) -> None:
    server = start_server(
        SESSIONSTREAM_WS_MESSAGES_PER_SECOND="5", SESSIONSTREAM_WS_MESSAGE_BURST="3"
    )
    async with await WSClient.open(server.ws_url) as ws:
        for n in range(10):
            await ws.send({"type": "ping", "ref": n})
        replies = [await ws.next(lambda m: m.get("type") in ("pong", "error")) for _ in range(10)]
        pongs = [r["ref"] for r in replies if r["type"] == "pong"]
        limited = [r for r in replies if r["type"] == "error"]
        assert pongs == [0, 1, 2]  # the burst
        assert {r["error"] for r in limited} == {"rate_limited"}
        assert all(r["retry_after"] > 0 for r in limited)
        await asyncio.sleep(0.5)  # two tokens come back
        await ws.send({"type": "ping", "ref": "later"})
        assert (await ws.next_type("pong"))["ref"] == "later"


# Channel names whose error message is cut near the native 80-byte excerpt limit: a
# multi-byte character straddling the cut once made the error text invalid UTF-8 and
# the route answer 500.
NON_ASCII_CHANNELS = [
    "a" * length + tail for length in (79, 80, 81, 200) for tail in ("\u00e9", "\U0001f600")
]
# Raw query values: valid UTF-8 percent-encoded, and invalid or truncated sequences.
RAW_CHANNEL_QUERIES = [
    *("a" * length + "%C3%A9" for length in (79, 80, 81, 200)),
    *("a" * length + "%F0%9F%98%80" for length in (79, 80)),
    "%ff",
    "a" * 79 + "%ff",
    "a" * 79 + "%c3",
    "a" * 80 + "%F0%9F%98",
    "a" * 300 + "%e9",
]


async def _assert_still_serving(server: ServerProcess) -> None:
    health = await get_health(server.url)
    assert health["status"] == "healthy"


@pytest.mark.asyncio
@pytest.mark.parametrize("channel", NON_ASCII_CHANNELS, ids=lambda c: f"{len(c)}-{ord(c[-1]):x}")
async def test_non_ascii_channel_names_cut_in_the_error_message_get_400(
    stream_server: ServerProcess, channel: str
) -> None:
    async with SSEClient(stream_server.url, [channel]) as refused:
        assert refused.status_code == 400
        body = await refused.body_json()
        assert body["error"] == "invalid_channel"
        assert body["detail"].startswith("channel name 'aaaa")
    ws = await WSClient.open(stream_server.ws_url, channels=[channel], expect_welcome=False)
    code, reason, _ = await ws.until_closed()
    assert code == 1008 and reason.startswith("invalid_channel")
    async with await WSClient.open(stream_server.ws_url) as ws:
        await ws.send({"type": "subscribe", "channels": [channel], "ref": "bad"})
        error = await ws.next_type("error")
        assert error["error"] == "invalid_channel" and error["ref"] == "bad"
        assert error["detail"].startswith("channel name 'aaaa")
        await ws.send({"type": "ping", "ref": "alive"})
        assert (await ws.next_type("pong"))["ref"] == "alive"
    await _assert_still_serving(stream_server)


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", RAW_CHANNEL_QUERIES, ids=lambda r: f"{len(r)}-{r[-6:]}")
async def test_percent_encoded_channel_names_get_400(
    stream_server: ServerProcess, raw: str
) -> None:
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client:
        response = await client.get(f"/stream/sse?channel={raw}")
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"] == "invalid_channel"
        # Dropping a channel no subscribe could have used is refused the same way
        # (422 past 256 characters, from the route's own bound).
        response = await client.post(f"/stream/session/disconnect?channel={raw}")
        if len(raw) > 256:
            assert response.status_code == 422
        else:
            assert response.status_code == 400
            assert response.json()["error"] == "invalid_channel"
    ws = await WSClient.open(
        stream_server.ws_url, path=f"/stream/ws?channel={raw}", expect_welcome=False
    )
    code, reason, _ = await ws.until_closed()
    assert code == 1008 and reason.startswith("invalid_channel")
    await _assert_still_serving(stream_server)


@pytest.mark.asyncio
async def test_raw_non_ascii_bytes_in_the_request_line_get_4xx(
    stream_server: ServerProcess,
) -> None:
    for channel in NON_ASCII_CHANNELS:
        reader, writer = await asyncio.open_connection("127.0.0.1", stream_server.port)
        try:
            writer.write(
                b"GET /stream/sse?channel=" + channel.encode() + b" HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5.0)
            status = int(status_line.split()[1])
            assert 400 <= status < 500, (channel, status_line)
        finally:
            writer.close()
    await _assert_still_serving(stream_server)
