"""Redis pub/sub into the hub (seed 001): crawl workers PUBLISH progress to
``crawl:<id>:progress`` and browsers stream it, through ONE subscription connection per
node, never one per browser connection."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable

import pytest
import redis as redis_client
import redis.asyncio as redis_async

from tests.integration.support import ServerProcess, SSEClient, eventually, get_health

pytestmark = pytest.mark.redis

StartNode = Callable[..., ServerProcess]

CRAWLS = 20
SUBSCRIBERS_PER_CRAWL = 2


def _pubsub_connections(redis: redis_client.Redis) -> int:
    return len(redis.client_list(_type="pubsub"))


async def _pubsub_ready(node: ServerProcess) -> dict[str, object]:
    async def ready() -> dict[str, object] | None:
        section = (await get_health(node.url)).get("redis", {}).get("pubsub", {})
        return section if section.get("status") == "healthy" else None

    return await eventually(ready, timeout=10, what="the pub/sub source is subscribed")


@pytest.mark.asyncio
async def test_seed001_twenty_crawls_forty_subscribers_one_redis_connection(
    start_node: StartNode, redis: redis_client.Redis
) -> None:
    tag = secrets.token_hex(3)
    pattern = f"crawl{tag}:*:progress"
    connections_before = _pubsub_connections(redis)
    node = start_node(SESSIONSTREAM_REDIS_SUBSCRIBE=pattern, SESSIONSTREAM_REDIS_STREAMS="0")
    await _pubsub_ready(node)
    port = redis.connection_pool.connection_kwargs["port"]

    crawl_ids = [f"c{n:02d}" for n in range(CRAWLS)]
    streams = [
        SSEClient(node.url, [f"crawl{tag}:{crawl}:progress"])
        for crawl in crawl_ids
        for _ in range(SUBSCRIBERS_PER_CRAWL)
    ]
    for stream in streams:
        await stream.__aenter__()
    try:
        # 40 browser connections, still one pattern subscription from this node.
        health = await _pubsub_ready(node)
        assert health["connections"] == 1
        assert _pubsub_connections(redis) - connections_before == 1

        async def crawl(crawl_id: str) -> None:
            # Each worker publishes its own progress with its own client, as seed 001's did.
            worker = redis_async.Redis(host="127.0.0.1", port=port)
            try:
                for percent in range(0, 101, 10):
                    await worker.publish(
                        f"crawl{tag}:{crawl_id}:progress",
                        json.dumps({"crawl": crawl_id, "percent": percent}),
                    )
                    await asyncio.sleep(0.01)
            finally:
                await worker.aclose()

        await asyncio.gather(*(crawl(c) for c in crawl_ids))
        for index, stream in enumerate(streams):
            mine = crawl_ids[index // SUBSCRIBERS_PER_CRAWL]
            events = await stream.collect(11, timeout=10)
            payloads = [e.json() for e in events]
            assert {p["crawl"] for p in payloads} == {mine}, "a stream saw another crawl"
            percents = [p["percent"] for p in payloads]
            assert percents == sorted(set(percents)), "progress went backwards or repeated"
            assert percents[-1] == 100 and max(percents) <= 100
    finally:
        for stream in streams:
            await stream.close()
    stats = (await get_health(node.url))["redis"]["pubsub"]
    assert stats["received"] >= CRAWLS * 11
    assert stats["connections"] == 1


@pytest.mark.asyncio
async def test_bad_pubsub_messages_are_counted_logged_once_and_skipped(
    start_node: StartNode, redis: redis_client.Redis
) -> None:
    tag = secrets.token_hex(3)
    node = start_node(
        SESSIONSTREAM_REDIS_SUBSCRIBE=f"bad{tag}:*",
        SESSIONSTREAM_REDIS_STREAMS="0",
        SESSIONSTREAM_MAX_EVENT_BYTES="1024",
    )
    await _pubsub_ready(node)
    good = f"bad{tag}:ok"
    async with SSEClient(node.url, [good]) as stream:
        for _ in range(2):  # twice each: counted twice, logged once
            redis.publish(f"bad{tag}:" + "x" * 400, "too long a channel name")
            redis.publish(f"bad{tag}:with space", "unprintable channel")
            redis.publish(f"bad{tag}:".encode() + b"\xff\xfe", "non-UTF-8 channel")
            redis.publish(good, "y" * 2048)
            redis.publish(good, b"\xc3\x28 invalid UTF-8")
        redis.publish(good, json.dumps({"still": "fine"}))
        event = await stream.next(timeout=5)
        assert event.json() == {"still": "fine"}
    stats = (await get_health(node.url))["redis"]["pubsub"]
    assert stats["skipped"]["invalid_channel"] == 6
    assert stats["skipped"]["too_large"] == 2
    assert stats["skipped"]["invalid_utf8"] == 2
    assert stats["published"] == 1

    async def logged() -> bool:
        return "invalid_utf8" in node.log() and "too_large" in node.log()

    await eventually(logged, timeout=5, what="the skip notes reach the log")
    assert node.log().count("[skip.invalid_utf8]") == 1
    assert node.log().count("[skip.too_large]") == 1
