"""``log_format="json"``: one JSON line per connection event in a real server's output,
sessions as the digest /health uses, never the id itself."""

from __future__ import annotations

from typing import Any

import pytest

from .support import SSEClient, WSClient, eventually, get_health, health_key, publish, session_id


@pytest.mark.asyncio
async def test_connection_events_are_json_lines_without_session_ids(start_server) -> None:
    server = start_server(SESSIONSTREAM_LOG_FORMAT="json", SESSIONSTREAM_MAX_PER_SESSION="1")
    sid = session_id("jsonlog")
    digest = health_key(sid)
    async with SSEClient(server.url, ["logs"], session_id=sid) as stream:
        connection_id = stream.welcome["connection_id"] if stream.welcome else None
        async with SSEClient(server.url, ["logs"], session_id=sid) as refused:
            assert refused.status_code == 429
        await publish(server, "logs", "x")
        await stream.next()
    ws = await WSClient.open(
        server.ws_url, channels=["forbidden:x"], session_id=sid + "w", expect_welcome=False
    )
    code, _, _ = await ws.until_closed()
    assert code == 1008

    def closed() -> list[dict[str, Any]]:
        return [e for e in server.json_lines() if e.get("event") == "closed"]

    await eventually(closed, what="a closed line")
    events = server.json_lines()
    assert sid not in server.log(), "the raw session id reached the log"
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in events:
        assert {"ts", "level", "event"} <= set(line), line
        by_event.setdefault(line["event"], []).append(line)

    (opened,) = [e for e in by_event["opened"] if e["session"] == digest]
    assert connection_id is None or opened["connection"] == connection_id
    (sse_refusal,) = [e for e in by_event["refused"] if e["transport"] == "sse"]
    assert sse_refusal == {**sse_refusal, "session": digest, "status": 429}, sse_refusal
    assert "per_session" in sse_refusal["reason"], sse_refusal
    (ws_refusal,) = [e for e in by_event["refused"] if e["transport"] == "websocket"]
    assert ws_refusal["session"] == health_key(sid + "w") and ws_refusal["code"] == 1008
    assert ws_refusal["reason"] == "forbidden_channel", ws_refusal
    (close,) = [e for e in by_event["closed"] if e["session"] == digest]
    assert close["connection"] == opened["connection"] and close["reason"], close
    for line in events:
        if "session" in line:
            assert line["session"].startswith("h:") and len(line["session"]) == 18, line


@pytest.mark.asyncio
async def test_text_format_logs_no_connection_lines(start_server) -> None:
    server = start_server()
    async with SSEClient(server.url, ["quiet"], session_id=session_id("text")):
        pass

    async def released() -> bool:
        return (await get_health(server.url))["total_connections"] == 0

    # Opened and closed by now: in json mode both lines would be out.
    await eventually(released, what="the stream to be released")
    assert server.json_lines() == []
