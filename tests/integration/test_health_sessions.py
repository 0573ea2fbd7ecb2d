"""Who sees which sessions in ``/health``, and one session looked up among thousands.

Anonymous callers get counts only; a request the ``health_authorize`` hook accepts gets the
per-session listing, one bounded page at a time. ``GET /stream/session`` looks the caller's
session up by id instead of listing every session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .support import ServerProcess, SSEClient, health_key, session_id

STREAM_APP = "tests.integration.stream_app:app"
TOKEN = "health-token-for-tests"

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def guarded_server() -> Iterator[ServerProcess]:
    server = ServerProcess(
        STREAM_APP,
        {
            "SESSIONSTREAM_HEALTH_SESSIONS": "authorized",
            "SESSIONSTREAM_HEALTH_MAX_SESSIONS": "50",
            "STREAM_APP_HEALTH_TOKEN": TOKEN,
        },
    )
    try:
        yield server.start()
    finally:
        server.stop()


async def _health(
    client: httpx.AsyncClient, token: str | None = None, **params: Any
) -> httpx.Response:
    headers = {"X-Health-Token": token} if token is not None else {}
    return await client.get("/health", headers=headers, params=params)


async def test_anonymous_health_has_counts_and_no_session_keys(
    guarded_server: ServerProcess,
) -> None:
    sids = [session_id("anon") for _ in range(3)]
    async with (
        SSEClient(guarded_server.url, ["news"], session_id=sids[0]),
        SSEClient(guarded_server.url, ["news"], session_id=sids[1]),
        SSEClient(guarded_server.url, ["sport"], session_id=sids[2]),
        httpx.AsyncClient(base_url=guarded_server.url, timeout=5.0) as client,
    ):
        for token in (None, "wrong-token", ""):
            response = await _health(client, token)
            assert response.status_code == 200
            document = response.json()
            assert document["active_sessions"] >= 3
            assert document["total_connections"] >= 3
            assert document["websocket_metrics"]["unique_browser_sessions"] >= 3
            assert "sessions" not in document
            assert "next_after" not in document
            assert document["sessions_listed"] == 0
            for sid in sids:
                assert sid not in response.text
                assert health_key(sid) not in response.text
        # The listing parameters give an anonymous caller nothing either.
        response = await _health(client, None, limit=5)
        assert response.status_code == 200
        assert "sessions" not in response.json()


async def test_authorized_health_lists_sessions_in_bounded_pages(
    guarded_server: ServerProcess,
) -> None:
    sids = [session_id("paged") for _ in range(5)]
    streams = [SSEClient(guarded_server.url, ["news"], session_id=sid) for sid in sids]
    for stream in streams:
        await stream.__aenter__()
    try:
        async with httpx.AsyncClient(base_url=guarded_server.url, timeout=5.0) as client:
            document = (await _health(client, TOKEN)).json()
            listed = document["sessions"]
            assert document["sessions_listed"] == len(listed) >= 5
            for sid in sids:
                view = listed[health_key(sid)]
                assert view["connection_count"] == 1
                assert view["domains"] == ["news"]
                assert view["channels"] == ["news", "session:" + health_key(sid)]
                # Digests only: the cursor and the keys never carry an id.
                assert sid not in str(document)

            seen: list[str] = []
            after: str | None = None
            for _ in range(20):
                params: dict[str, Any] = {"limit": 2}
                if after is not None:
                    params["after"] = after
                response = await _health(client, TOKEN, **params)
                assert response.status_code == 200, response.text
                page = response.json()
                assert len(page["sessions"]) <= 2
                seen.extend(page["sessions"])
                after = page["next_after"]
                if after is None:
                    break
                assert not any(sid in after for sid in sids)
            assert after is None, "the pages never ended"
            assert len(seen) == len(set(seen)), "a session was listed on two pages"
            assert {health_key(sid) for sid in sids} <= set(seen)

            # The page size is bounded by health_max_sessions whatever is asked for.
            assert len((await _health(client, TOKEN, limit=10_000)).json()["sessions"]) <= 50

            for bad in ({"limit": 0}, {"limit": "many"}, {"after": "c:not-a-cursor"}):
                response = await _health(client, TOKEN, **bad)
                assert response.status_code == 400, bad
                assert response.json()["error"] in {"invalid_query", "invalid_cursor"}
    finally:
        for stream in streams:
            await stream.__aexit__(None, None, None)


async def test_full_ids_page_by_the_last_id(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(
        SESSIONSTREAM_HEALTH_SESSIONS="always", SESSIONSTREAM_HEALTH_SESSION_IDS="full"
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        response = await client.post("/test/idle_sessions", params={"prefix": "full", "count": 7})
        assert response.json()["sessions"] == 7
        first = (await _health(client, None, limit=4)).json()
        assert list(first["sessions"]) == [f"full-{i:06d}" for i in range(4)]
        assert first["next_after"] == "full-000003"
        second = (await _health(client, None, limit=4, after=first["next_after"])).json()
        assert list(second["sessions"]) == [f"full-{i:06d}" for i in range(4, 7)]
        assert second["next_after"] is None


async def _timed_session_lookup(client: httpx.AsyncClient, sid: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        response = await client.get("/stream/session", headers={"X-Session-ID": sid})
        best = min(best, time.perf_counter() - started)
        assert response.status_code == 200
        body = response.json()
        assert body["session_id"] == sid
        assert body["channels"] == ["idle", "session:" + sid]
    return best


async def test_session_lookup_among_5000_sessions(guarded_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=guarded_server.url, timeout=30.0) as client:
        await client.delete("/test/idle_sessions")
        baseline = (await _health(client)).json()["active_sessions"]
        await client.post("/test/idle_sessions", params={"prefix": "few", "count": 10})
        few = await _timed_session_lookup(client, "few-000004", 20)
        response = await client.post(
            "/test/idle_sessions", params={"prefix": "many", "count": 4990}
        )
        assert response.json()["sessions"] == baseline + 5000
        many = await _timed_session_lookup(client, "many-002500", 20)
        # Reported, not asserted: wall-clock ratios on a shared machine are noise.
        print(
            f"GET /stream/session best of 20: {few * 1e3:.2f} ms at 10 sessions,"
            f" {many * 1e3:.2f} ms at 5,000"
        )

        # A session with no connection is looked up, not found, and gets no channels.
        stranger = session_id("stranger")
        body = (await client.get("/stream/session", headers={"X-Session-ID": stranger})).json()
        assert body["channels"] == [] and body["connections"] == []

        # The counts cover every session; a listing is one bounded page of them.
        anonymous = (await _health(client)).json()
        assert anonymous["active_sessions"] == baseline + 5000
        assert "sessions" not in anonymous
        page = (await _health(client, TOKEN, limit=25)).json()
        assert len(page["sessions"]) == 25
        assert page["next_after"] is not None
        assert (await client.delete("/test/idle_sessions")).json()["sessions"] == baseline
