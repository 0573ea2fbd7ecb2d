"""Seed 001: two users, two crawls; each stream sees only its own progress, never > 100%."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from .support import ServerProcess, SSEClient, eventually, session_id


async def start_crawl(server: ServerProcess, sid: str, pages: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
        response = await client.post(
            "/api/crawls",
            json={"url": f"https://{sid}.example", "pages": pages},
            headers={"X-Session-ID": sid},
        )
        assert response.status_code == 201, response.text
        return response.json()


async def crawls_of(server: ServerProcess, sid: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
        response = await client.get("/api/crawls", headers={"X-Session-ID": sid})
        return response.json()["crawls"]


async def follow(stream: SSEClient, crawl_id: str) -> list[dict[str, Any]]:
    """Read progress until the crawl is done; return every progress payload."""
    seen: list[dict[str, Any]] = []
    while True:
        event = await stream.next(timeout=10)
        if event.event in ("progress", "done"):
            seen.append(event.json())
            if event.event == "done" and event.json()["crawl_id"] == crawl_id:
                return seen


@pytest.mark.asyncio
async def test_two_users_two_crawls_see_only_their_own(demo_server: ServerProcess) -> None:
    alice, bob = session_id("alice"), session_id("bob")
    crawl_a = await start_crawl(demo_server, alice, pages=15)
    crawl_b = await start_crawl(demo_server, bob, pages=25)
    async with (
        SSEClient(demo_server.url, [crawl_a["channel"]], session_id=alice) as stream_a,
        SSEClient(demo_server.url, [crawl_b["channel"]], session_id=bob) as stream_b,
    ):
        seen_a, seen_b = await asyncio.gather(
            follow(stream_a, crawl_a["id"]), follow(stream_b, crawl_b["id"])
        )
    assert {p["crawl_id"] for p in seen_a} == {crawl_a["id"]}
    assert {p["crawl_id"] for p in seen_b} == {crawl_b["id"]}
    for seen, pages in ((seen_a, 15), (seen_b, 25)):
        percents = [p["percent"] for p in seen]
        assert max(percents) == 100 and all(0 <= p <= 100 for p in percents)
        assert percents == sorted(percents)
        assert seen[-1]["pages_done"] == pages


@pytest.mark.asyncio
async def test_a_user_cannot_subscribe_to_another_users_crawl(demo_server: ServerProcess) -> None:
    alice, mallory = session_id("alice"), session_id("mallory")
    crawl = await start_crawl(demo_server, alice, pages=5)
    async with SSEClient(demo_server.url, [crawl["channel"]], session_id=mallory) as refused:
        assert refused.status_code == 403
        assert (await refused.body_json())["error"] == "forbidden_channel"
    async with SSEClient(
        demo_server.url, ["crawl:000000000000:progress"], session_id=mallory
    ) as unknown:
        assert unknown.status_code == 403
    assert await crawls_of(demo_server, mallory) == []


@pytest.mark.asyncio
async def test_disconnecting_one_user_leaves_the_other_untouched(
    demo_server: ServerProcess,
) -> None:
    alice, bob = session_id("alice"), session_id("bob")
    crawl_a = await start_crawl(demo_server, alice, pages=40)
    crawl_b = await start_crawl(demo_server, bob, pages=40)
    stream_a = await SSEClient(demo_server.url, [crawl_a["channel"]], session_id=alice).__aenter__()
    async with SSEClient(demo_server.url, [crawl_b["channel"]], session_id=bob) as stream_b:
        await stream_a.next()
        await stream_b.next()
        await stream_a.close()  # alice goes away mid-crawl
        await eventually(lambda: _subscribers(demo_server, alice, 0), what="alice released")
        seen_b = await follow(stream_b, crawl_b["id"])
        assert seen_b[-1]["percent"] == 100
        assert {p["crawl_id"] for p in seen_b} == {crawl_b["id"]}


async def _subscribers(server: ServerProcess, sid: str, expected: int) -> bool:
    crawls = await crawls_of(server, sid)
    return bool(crawls) and all(c["subscribers"] == expected for c in crawls)


@pytest.mark.asyncio
async def test_subscriber_counts_return_to_zero_after_disconnects(
    demo_server: ServerProcess,
) -> None:
    users = [session_id(f"user{i}") for i in range(3)]
    crawls = [await start_crawl(demo_server, sid, pages=50) for sid in users]
    streams = []
    for sid, crawl in zip(users, crawls, strict=True):
        for _ in range(2):  # two tabs each
            streams.append(
                await SSEClient(demo_server.url, [crawl["channel"]], session_id=sid).__aenter__()
            )
    for sid in users:
        assert await _subscribers(demo_server, sid, 2)
    for stream in streams:
        await stream.close()
    for sid in users:
        await eventually(lambda sid=sid: _subscribers(demo_server, sid, 0), what=f"{sid} released")
