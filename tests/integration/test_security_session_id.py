"""The session id stays out of URLs and out of access logs.

By default a ``?session_id=`` is refused (400 / close 1008) on every route that reads the
session; with ``session_query_enabled`` it is accepted, and ``sessionstream serve``'s
default log configuration redacts it from uvicorn's access log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from sessionstream.server.log_filter import RedactSessionIds

from .conftest import STREAM_APP
from .support import ServerProcess, SSEClient, WSClient, eventually, session_id


def test_filter_redacts_query_values_in_access_records() -> None:
    sid = session_id("filter")
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/stream/sse?channel=a&session_id={sid}&x=1", "1.1", 200),
        None,
    )
    assert RedactSessionIds().filter(record)
    line = record.getMessage()
    assert sid not in line and "session_id=[redacted]&x=1" in line
    other = RedactSessionIds(names=("sid",))
    assert other.redact(f"/p?sid={sid}") == "/p?sid=[redacted]"
    assert other.redact(f"/p?mysid={sid}") == f"/p?mysid={sid}"  # a different parameter


@pytest.mark.asyncio
async def test_query_session_id_is_refused_by_default(stream_server: ServerProcess) -> None:
    sid = session_id("query")
    async with SSEClient(stream_server.url, ["x"], session_id=sid, session_query=True) as sse:
        assert sse.status_code == 400
        body = await sse.body_json()
        assert body["error"] == "session_id_in_url"
        assert "X-Session-ID" in body["detail"] and "session_query_enabled" in body["detail"]
    ws = await WSClient.open(
        stream_server.ws_url, session_id=sid, session_query=True, expect_welcome=False
    )
    code, reason, _ = await ws.until_closed()
    assert code == 1008 and reason.startswith("session_id_in_url")
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client:
        for method, path, params in (
            ("GET", "/stream/session", {}),
            ("POST", "/stream/session/cleanup", {}),
            ("POST", "/stream/session/disconnect", {"channel": "x"}),
            ("POST", "/stream/connections/1/close", {}),
        ):
            params = {**params, "session_id": sid}
            response = await client.request(method, path, params=params)
            assert response.status_code == 400, path
            assert response.json()["error"] == "session_id_in_url"
    # The header and the cookie are the ways in.
    async with SSEClient(stream_server.url, ["x"], session_id=sid) as by_header:
        assert by_header.welcome is not None and by_header.welcome["session_id"] == sid
    cookie = {"Cookie": f"sessionstream_sid={sid}"}
    async with SSEClient(stream_server.url, ["x"], headers=cookie) as by_cookie:
        assert by_cookie.welcome is not None and by_cookie.welcome["session_id"] == sid


@pytest.fixture
def logged_server(delivery: str) -> Iterator[ServerProcess]:
    """``sessionstream serve`` with the access log on and the query opt-in."""
    server = ServerProcess(
        STREAM_APP,
        {"SESSIONSTREAM_SESSION_QUERY_ENABLED": "1"},
        delivery=delivery,
        launcher=("sessionstream", "serve"),
        server_args=["--log-level", "info", "--access-log"],
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_opt_in_query_id_never_reaches_the_access_log(logged_server: ServerProcess) -> None:
    sid = session_id("legacy")
    async with SSEClient(logged_server.url, ["x"], session_id=sid, session_query=True) as sse:
        assert sse.welcome is not None and sse.welcome["session_id"] == sid  # accepted
    async with await WSClient.open(logged_server.ws_url, session_id=sid, session_query=True) as ws:
        assert ws.welcome is not None and ws.welcome["session_id"] == sid
    async with httpx.AsyncClient(base_url=logged_server.url, timeout=5.0) as client:
        # Not a stream route: logged by uvicorn whatever the delivery mode.
        assert (await client.get("/health", params={"session_id": sid})).status_code == 200
        cleanup = await client.post("/stream/session/cleanup", params={"session_id": sid})
        assert cleanup.status_code == 200
    await eventually(
        lambda: "/stream/session/cleanup?session_id=[redacted]" in logged_server.log(),
        what="the cleanup request in the access log",
    )
    log = logged_server.log()
    assert "/health?session_id=[redacted]" in log
    assert sid not in log


@pytest.mark.asyncio
async def test_plain_uvicorn_log_would_show_the_id(delivery: str) -> None:
    """The control: without the filter the same request puts the id in the log."""
    server = ServerProcess(
        STREAM_APP, delivery=delivery, server_args=["--log-level", "info", "--access-log"]
    ).start()
    try:
        sid = session_id("control")
        async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
            await client.get("/health", params={"session_id": sid})
        await eventually(lambda: sid in server.log(), what="the id in the unfiltered log")
    finally:
        server.stop()
