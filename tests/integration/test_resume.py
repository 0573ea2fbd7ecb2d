"""Resume: exactly the missed events, or an explicit gap/reset; never a crash or a hole."""

from __future__ import annotations

import pytest

from .support import ServerProcess, SSEClient, WSClient, get_health, publish, session_id


@pytest.mark.asyncio
async def test_sse_drop_mid_stream_and_resume_with_last_event_id(
    stream_server: ServerProcess,
) -> None:
    channel = f"resume-{session_id('r')}"
    sid = session_id("resumer")
    async with SSEClient(stream_server.url, [channel], session_id=sid) as stream:
        first_ids = await publish(stream_server, channel, "before", count=5)
        received = await stream.collect(3)  # the client drops after three of the five
        assert [e.id for e in received] == first_ids[:3]
    last_seen = received[-1].id
    later_ids = await publish(stream_server, channel, "while away", count=4)
    async with SSEClient(
        stream_server.url, [channel], session_id=sid, last_event_id=last_seen
    ) as resumed:
        assert resumed.welcome is not None and resumed.welcome["resume"] == "exact"
        missed = await resumed.collect(6)
        assert [e.id for e in missed] == first_ids[3:] + later_ids
        (live_id,) = await publish(stream_server, channel, "live again")
        assert (await resumed.next()).id == live_id


@pytest.mark.asyncio
async def test_sse_resume_from_query_parameter(stream_server: ServerProcess) -> None:
    channel = f"query-{session_id('q')}"
    ids = await publish(stream_server, channel, "x", count=3)
    async with SSEClient(stream_server.url, [channel], last_event_id_query=ids[0]) as stream:
        assert [e.id for e in await stream.collect(2)] == ids[1:]


@pytest.mark.asyncio
async def test_header_wins_over_query(stream_server: ServerProcess) -> None:
    # A browser reconnecting a URL that carries ?last_event_id=... sends the newer id
    # in the Last-Event-ID header.
    channel = f"both-{session_id('b')}"
    ids = await publish(stream_server, channel, "x", count=4)
    async with SSEClient(
        stream_server.url, [channel], last_event_id_query=ids[0], last_event_id=ids[2]
    ) as stream:
        assert (await stream.next()).id == ids[3]


@pytest.mark.asyncio
async def test_one_id_resumes_every_channel_of_the_connection(stream_server: ServerProcess) -> None:
    a, b = f"ra-{session_id('x')}", f"rb-{session_id('x')}"
    (start,) = await publish(stream_server, a, "start")
    ids = []
    for i in range(6):
        ids += await publish(stream_server, a if i % 2 else b, {"i": i})
    async with SSEClient(stream_server.url, [a, b], last_event_id=start) as stream:
        assert [e.id for e in await stream.collect(6)] == ids


@pytest.mark.asyncio
async def test_websocket_resume_after_drop(stream_server: ServerProcess) -> None:
    channel = f"wsr-{session_id('w')}"
    ws = await WSClient.open(stream_server.ws_url, channels=[channel])
    ids = await publish(stream_server, channel, "x", count=2)
    seen = [await ws.next_type("event") for _ in range(2)]
    await ws.close()
    missed = await publish(stream_server, channel, "y", count=3)
    async with await WSClient.open(
        stream_server.ws_url, channels=[channel], last_event_id=seen[-1]["id"]
    ) as again:
        assert again.welcome is not None and again.welcome["resume"] == "exact"
        replay = [await again.next_type("event") for _ in range(3)]
        assert [m["id"] for m in replay] == missed
        assert ids == [m["id"] for m in seen]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("bad_id", "reason"),
    [
        ("garbage", "malformed_id"),
        ("12-34-56", "malformed_id"),
        ("0-1", "unknown_epoch"),  # an id from an earlier process: the server restarted
    ],
)
async def test_garbage_last_event_id_gets_an_explicit_reset(
    stream_server: ServerProcess, bad_id: str, reason: str
) -> None:
    channel = f"reset-{session_id('z')}"
    async with SSEClient(stream_server.url, [channel], last_event_id=bad_id) as stream:
        assert stream.welcome is not None and stream.welcome["resume"] == "reset"
        reset = await stream.next()
        assert reset.event == "reset"
        assert reset.json()["reason"] == reason
        head = reset.json()["head"]
        assert reset.id == head  # the browser's Last-Event-ID moves to the head
        (live_id,) = await publish(stream_server, channel, "after reset")
        assert (await stream.next()).id == live_id
    async with await WSClient.open(
        stream_server.ws_url, channels=[channel], last_event_id=bad_id
    ) as ws:
        frame = await ws.next_type("reset")
        assert frame["reason"] == reason
    assert (await get_health(stream_server.url))["status"] in ("healthy", "degraded")


@pytest.mark.asyncio
async def test_future_id_gets_a_reset(stream_server: ServerProcess) -> None:
    channel = f"future-{session_id('f')}"
    (event_id,) = await publish(stream_server, channel, "x")
    epoch, seq = event_id.split("-")
    async with SSEClient(
        stream_server.url, [channel], last_event_id=f"{epoch}-{int(seq) + 10_000}"
    ) as stream:
        reset = await stream.next()
        assert (reset.event, reset.json()["reason"]) == ("reset", "future_id")


@pytest.mark.asyncio
async def test_evicted_history_gets_an_explicit_gap(stream_server: ServerProcess) -> None:
    # The stream app keeps 64 events per channel.
    channel = f"gap-{session_id('g')}"
    (first,) = await publish(stream_server, channel, "old")
    later = await publish(stream_server, channel, "x", count=100)
    async with SSEClient(stream_server.url, [channel], last_event_id=first) as stream:
        assert stream.welcome is not None and stream.welcome["resume"] == "gap"
        gap = await stream.next()
        assert gap.event == "gap"
        assert gap.json()["channels"] == [channel]
        held = await stream.collect(64)
        assert [e.id for e in held] == later[-64:]


@pytest.mark.asyncio
async def test_ids_never_go_backwards_after_a_gap(stream_server: ServerProcess) -> None:
    channel = f"gapid-{session_id('g')}"
    (first,) = await publish(stream_server, channel, "old")
    await publish(stream_server, channel, "x", count=100)
    async with SSEClient(stream_server.url, [channel], last_event_id=first) as stream:
        gap = await stream.next()
        held = await stream.next()
        assert gap.id is None or _seq(gap.id) < _seq(held.id or "")


def _seq(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


@pytest.mark.asyncio
async def test_drop_before_the_first_event_still_resumes(stream_server: ServerProcess) -> None:
    # A fresh stream tells the client its position before the welcome, so the browser's
    # Last-Event-ID is set even if no event arrived before the drop.
    channel = f"early-{session_id('e')}"
    async with SSEClient(stream_server.url, [channel]) as stream:
        position = stream.last_event_id_seen
        assert position is not None and stream.events[0].event == "welcome"
    missed = await publish(stream_server, channel, "while away", count=3)
    async with SSEClient(stream_server.url, [channel], last_event_id=position) as resumed:
        assert resumed.welcome is not None and resumed.welcome["resume"] == "exact"
        assert [e.id for e in await resumed.collect(3)] == missed
