"""Several nodes behave as one through Redis: every publish is delivered once by every
node, ids mean the same everywhere, a browser resumes exactly on whichever node it
reaches, and sessions live in Redis.

Nodes are real uvicorn processes of the stream test app sharing one redis-server and one
key prefix; clients are real HTTP/WebSocket clients.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import httpx
import pytest

from tests.integration.support import (
    ServerProcess,
    SSEClient,
    WSClient,
    eventually,
    get_health,
    publish,
    session_id,
)

pytestmark = pytest.mark.redis

StartNode = Callable[..., ServerProcess]


async def _streams_per_worker(node: ServerProcess) -> dict[int, int]:
    """Open streams per worker pid, asked over fresh connections until both answered."""
    seen: dict[int, int] = {}
    for _ in range(30):
        async with httpx.AsyncClient(timeout=5) as http:  # a new connection each time
            body = (await http.get(node.url + "/test/pid")).json()
        if body["streams"]:
            seen[body["pid"]] = body["streams"]
        if len(seen) == 2:
            break
    return seen


async def _ready(node: ServerProcess) -> None:
    async def stream_ready() -> bool:
        section = (await get_health(node.url)).get("redis", {})
        return section.get("status") == "healthy"

    await eventually(stream_ready, timeout=10, what="the node's Redis stream is connected")


@pytest.mark.asyncio
async def test_a_publish_on_either_node_is_delivered_once_by_each(start_node: StartNode) -> None:
    node_a, node_b = start_node(), start_node()
    await asyncio.gather(_ready(node_a), _ready(node_b))
    channel = f"news-{session_id('c')}"
    async with (
        SSEClient(node_a.url, [channel]) as on_a,
        SSEClient(node_b.url, [channel]) as on_b,
    ):
        ids = await publish(node_a, channel, "from a", count=3)
        ids += await publish(node_b, channel, "from b", count=3)
        got_a = [e.id for e in await on_a.collect(6)]
        got_b = [e.id for e in await on_b.collect(6)]
        # Nothing more arrives: each node delivered each event exactly once.
        with pytest.raises(asyncio.TimeoutError):
            await on_a.next(timeout=0.5)
        with pytest.raises(asyncio.TimeoutError):
            await on_b.next(timeout=0.5)
    assert got_a == got_b == ids
    assert len(set(ids)) == 6
    # One id space: the ids both nodes returned increase as Redis numbered them.
    seqs = [int(i.rsplit("-", 1)[1]) for i in ids]
    assert seqs == sorted(seqs)
    assert {i.split("-")[0] for i in ids} == {ids[0].split("-")[0]}


@pytest.mark.asyncio
async def test_a_browser_resumes_exactly_on_the_other_node(start_node: StartNode) -> None:
    # Node B keeps only two events per channel: most of the resume comes from the stream.
    node_a = start_node()
    node_b = start_node(SESSIONSTREAM_HISTORY_MAX_EVENTS="2")
    await asyncio.gather(_ready(node_a), _ready(node_b))
    channel = f"resume-{session_id('c')}"
    sid = session_id("traveller")
    async with SSEClient(node_a.url, [channel], session_id=sid) as stream:
        first = await publish(node_a, channel, "before", count=3)
        seen = [e.id for e in await stream.collect(3)]
    assert seen == first
    missed = await publish(node_a, channel, "while away", count=5)
    async with SSEClient(node_b.url, [channel], session_id=sid, last_event_id=seen[-1]) as back:
        assert back.welcome is not None and back.welcome["resume"] == "exact"
        assert [e.id for e in await back.collect(5)] == missed
        (live,) = await publish(node_a, channel, "live")
        assert (await back.next()).id == live
    # Node B's own ring held only two of them: the rest came from Redis.
    stream_health = (await get_health(node_b.url))["redis"]["stream"]
    assert stream_health["replays"] >= 1
    assert stream_health["replayed_events"] >= 3


@pytest.mark.asyncio
async def test_a_resume_older_than_the_stream_bound_is_an_explicit_gap(
    start_node: StartNode,
) -> None:
    small = {"SESSIONSTREAM_REDIS_STREAM_MAX_LEN": "5", "SESSIONSTREAM_HISTORY_MAX_EVENTS": "2"}
    node_a, node_b = start_node(**small), start_node(**small)
    await asyncio.gather(_ready(node_a), _ready(node_b))
    channel = f"bound-{session_id('c')}"
    (old,) = await publish(node_a, channel, "old")
    # Far more than MAXLEN (approximate trimming keeps at least 5, at most ~100 more).
    await publish(node_a, channel, "filler", count=300)
    async with SSEClient(node_b.url, [channel], last_event_id=old) as stream:
        assert stream.welcome is not None and stream.welcome["resume"] == "gap"
        gap = await stream.next_of("gap")
        assert channel in gap.json()["channels"]


@pytest.mark.asyncio
async def test_websocket_resume_on_the_other_node(start_node: StartNode) -> None:
    node_a, node_b = start_node(), start_node()
    await asyncio.gather(_ready(node_a), _ready(node_b))
    channel = f"ws-{session_id('c')}"
    first = await publish(node_b, channel, "x", count=2)
    missed = await publish(node_b, channel, "y", count=3)
    async with await WSClient.open(
        node_a.ws_url, channels=[channel], last_event_id=first[-1]
    ) as ws:
        assert ws.welcome is not None and ws.welcome["resume"] == "exact"
        events = [await ws.next(lambda m: m["type"] == "event") for _ in range(3)]
    assert [e["id"] for e in events] == missed


@pytest.mark.asyncio
async def test_personal_messages_reach_tabs_on_every_node(start_node: StartNode) -> None:
    node_a, node_b = start_node(), start_node()
    await asyncio.gather(_ready(node_a), _ready(node_b))
    sid = session_id("two-nodes")
    async with (
        SSEClient(node_a.url, [], session_id=sid) as tab_a,
        SSEClient(node_b.url, [], session_id=sid) as tab_b,
        await WSClient.open(node_a.ws_url, session_id=sid) as ws,
    ):
        await ws.send({"type": "work", "seconds": 0.05})
        done_a = await tab_a.next_of("work.done")
        done_b = await tab_b.next_of("work.done")
    assert done_a.id == done_b.id


@pytest.mark.asyncio
async def test_a_session_written_through_one_node_is_read_through_the_other(
    start_node: StartNode,
) -> None:
    node_a, node_b = start_node(), start_node()
    sid = session_id("shared")
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.put(
            node_a.url + "/test/store", params={"session_id": sid, "key": "k", "value": "v1"}
        )
        r.raise_for_status()
        for entry in ("hello", "world"):
            r = await client.post(
                node_a.url + "/test/history", params={"session_id": sid, "entry": entry}
            )
            r.raise_for_status()
        r = await client.get(node_b.url + "/test/store", params={"session_id": sid, "key": "k"})
        assert r.json() == {"value": "v1"}
        r = await client.get(node_b.url + "/test/history", params={"session_id": sid})
        assert r.json() == {"entries": ["hello", "world"]}
        r = await client.post(
            node_b.url + "/test/history", params={"session_id": sid, "entry": "again"}
        )
        assert r.json() == {"index": 2}


@pytest.mark.asyncio
async def test_node_a_killed_the_session_continues_on_node_b(start_node: StartNode) -> None:
    node_a, node_b = start_node(), start_node()
    await asyncio.gather(_ready(node_a), _ready(node_b))
    channel = f"failover-{session_id('c')}"
    sid = session_id("survivor")
    async with httpx.AsyncClient(timeout=5) as client:
        await client.put(
            node_a.url + "/test/store", params={"session_id": sid, "key": "cart", "value": "3"}
        )
    async with SSEClient(node_a.url, [channel], session_id=sid) as stream:
        ids = await publish(node_a, channel, "before", count=2)
        assert [e.id for e in await stream.collect(2)] == ids
        node_a.terminate(signal.SIGKILL)
        node_a.wait(10)
    # While the browser looks for another node, node B keeps publishing.
    missed = await publish(node_b, channel, "after", count=3)
    async with SSEClient(node_b.url, [channel], session_id=sid, last_event_id=ids[-1]) as back:
        assert [e.id for e in await back.collect(3)] == missed
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(node_b.url + "/test/store", params={"session_id": sid, "key": "cart"})
        assert r.json() == {"value": "3"}


@pytest.mark.asyncio
async def test_two_uvicorn_workers_deliver_every_event_once(start_node: StartNode) -> None:
    node = start_node(server_args=["--workers", "2"])
    await _ready(node)
    channel = f"workers-{session_id('c')}"
    # Each client must get each event once, whichever worker holds its stream and
    # whichever worker takes the publish request. Streams are opened until both
    # workers hold some (the kernel decides which worker accepts).
    clients: list[SSEClient] = []
    streams_per_worker: dict[int, int] = {}
    try:
        while len(clients) < 40:
            client = SSEClient(node.url, [channel])
            clients.append(client)
            await client.__aenter__()
            streams_per_worker = await _streams_per_worker(node)
            if len(streams_per_worker) == 2 and len(clients) >= 6:
                break
        assert len(streams_per_worker) == 2, streams_per_worker
        ids: list[str] = []
        for n in range(6):
            ids += await publish(node, channel, {"n": n})
        for client in clients:
            assert [e.id for e in await client.collect(6)] == ids
        for client in clients:
            with pytest.raises(asyncio.TimeoutError):
                await client.next(timeout=0.2)
    finally:
        for client in clients:
            await client.close()
