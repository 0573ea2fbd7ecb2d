"""Redis unreachable or restarted: health says so, nothing crashes, streams continue, and
resumable clients lose nothing inside the history bound. Each test has its own
redis-server, which it stops and starts."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.integration.support import ServerProcess, SSEClient, eventually, get_health, session_id

from .conftest import RedisServer

pytestmark = pytest.mark.redis

StartNode = Callable[..., ServerProcess]


async def _redis_status(node: ServerProcess) -> str:
    return (await get_health(node.url)).get("redis", {}).get("status", "")


async def _publish_status(node: ServerProcess, channel: str, data: str) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(node.url + "/test/publish", json={"channel": channel, "data": data})
        return r.status_code, r.json()


@pytest.mark.asyncio
async def test_redis_down_at_start_is_degraded_then_healthy(
    start_node: StartNode, private_redis: RedisServer
) -> None:
    private_redis.stop()
    node = start_node(redis_url=private_redis.url)  # starts: no crash
    health = await get_health(node.url)
    assert health["status"] == "degraded"
    assert health["redis"]["status"] == "degraded"
    assert any(reason.startswith("redis: stream:") for reason in health["reasons"]), health
    # Publishing now fails loudly instead of dropping the event.
    status, body = await _publish_status(node, "news", "lost?")
    assert status == 503 and body["error"] == "unavailable"
    private_redis.start()

    async def healthy() -> bool:
        return await _redis_status(node) == "healthy"

    await eventually(healthy, timeout=15, what="the node reconnects to Redis")
    async with SSEClient(node.url, ["news"]) as stream:
        status, body = await _publish_status(node, "news", "now it works")
        assert status == 200
        assert (await stream.next()).id == body["ids"][0]


@pytest.mark.asyncio
async def test_redis_restarted_while_streaming(
    start_node: StartNode, private_redis: RedisServer
) -> None:
    node_a = start_node(redis_url=private_redis.url)
    node_b = start_node(redis_url=private_redis.url)

    async def healthy(node: ServerProcess) -> bool:
        return await _redis_status(node) == "healthy"

    for node in (node_a, node_b):
        await eventually(lambda node=node: healthy(node), timeout=10, what="connected")
    channel = f"outage-{session_id('c')}"
    sid = session_id("patient")
    async with (
        SSEClient(node_a.url, [channel]) as live,
        SSEClient(node_b.url, [channel], session_id=sid) as resumable,
    ):
        before = []
        for n in range(3):
            status, body = await _publish_status(node_a, channel, f"before {n}")
            assert status == 200
            before += body["ids"]
        assert [e.id for e in await live.collect(3)] == before
        assert [e.id for e in await resumable.collect(3)] == before
        last_seen = resumable.last_event_id_seen
        await resumable.close()  # this browser goes away during the outage

        private_redis.stop()

        async def degraded() -> bool:
            return await _redis_status(node_a) == "degraded"

        await eventually(degraded, timeout=10, what="health shows the outage")
        private_redis.start()  # appendonly: the stream and its ids survive
        await eventually(lambda: healthy(node_a), timeout=15, what="reconnected")
        await eventually(lambda: healthy(node_b), timeout=15, what="reconnected")

        after = []
        for n in range(3):
            status, body = await _publish_status(node_b, channel, f"after {n}")
            assert status == 200
            after += body["ids"]
        # The open stream never closed and continues with the same id space.
        assert [e.id for e in await live.collect(3, timeout=10)] == after
        assert after[0].split("-")[0] == before[0].split("-")[0]
    # The browser that left during the outage resumes on the other node: nothing lost.
    async with SSEClient(node_a.url, [channel], session_id=sid, last_event_id=last_seen) as back:
        assert back.welcome is not None and back.welcome["resume"] == "exact"
        assert [e.id for e in await back.collect(3)] == after
    # Each node saw the outage and came back.
    stream_health = (await get_health(node_a.url))["redis"]["stream"]
    assert stream_health["reconnects"] >= 1
    assert stream_health["lost"] == 0


def test_bad_redis_url_stops_the_server_with_a_clear_error(
    start_node: StartNode,
) -> None:
    for url, expected in (
        ("http://127.0.0.1:6379", "redis://"),
        ("redis://127.0.0.1:99999/0", "port"),
        ("rediss://user:s3cret@127.0.0.1:6380/0", "TLS"),
    ):
        with pytest.raises(RuntimeError) as failure:
            start_node(redis_url=url)
        log = str(failure.value)
        assert "redis_url" in log and expected in log, log
        assert "s3cret" not in log
