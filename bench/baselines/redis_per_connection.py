"""Baseline: the seed-001 pattern, one Redis pub/sub subscription per browser connection.

Run:  BENCH_REDIS_URL=redis://127.0.0.1:16400/0 uvicorn redis_per_connection:app \
          --app-dir bench/baselines --loop uvloop --http httptools

``GET /stream/sse?channel=crawl:<id>:progress`` gives the connection its own session id,
opens its own Redis connection (``redis.asyncio`` ``PubSub``), SUBSCRIBEs to that one
channel, and forwards every message after the seed's checks: the message's channel is
the subscribed one and its ``crawlId`` is the crawl of the URL. The subscription is
closed when the browser goes away. ``GET /bench/stats`` counts open streams, forwarded
and rejected messages; publishing is done by whoever PUBLISHes to Redis.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import AsyncIterator

import redis.asyncio as redis
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import StreamingResponse

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:16400/0")
HEARTBEAT_S = float(os.environ.get("BENCH_HEARTBEAT", "15"))

# Each PubSub takes a connection of its own from the pool and keeps it while subscribed,
# so N browsers hold N connections. redis-py caps a pool at 100 by default; the seed's
# client (a duplicated connection per stream) had no cap, so neither has this one.
client = redis.Redis.from_url(REDIS_URL, decode_responses=True, max_connections=100_000)
counters = {"connections": 0, "opened": 0, "forwarded": 0, "rejected": 0, "errors": 0}

app = FastAPI()


def crawl_id_of(channel: str) -> str:
    parts = channel.split(":")
    if len(parts) != 3 or parts[0] != "crawl" or parts[2] != "progress" or not parts[1]:
        raise HTTPException(422, f"channel={channel!r}: expected crawl:<id>:progress")
    return parts[1]


@app.get("/stream/sse")
async def stream_sse(channel: str = Query(min_length=1, max_length=256)) -> StreamingResponse:
    crawl_id = crawl_id_of(channel)
    session_id = f"sse-{int(time.time() * 1000)}-{secrets.token_hex(5)}"

    async def frames() -> AsyncIterator[str]:
        pubsub = client.pubsub()
        counters["connections"] += 1
        counters["opened"] += 1
        try:
            await pubsub.subscribe(channel)
            yield f": connected {session_id}\n\n"
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=HEARTBEAT_S
                )
                if message is None:
                    yield ": keep-alive\n\n"
                    continue
                # The seed's isolation checks: the exact channel, then the payload's crawl.
                if message["channel"] != channel:
                    counters["rejected"] += 1
                    continue
                data = message["data"]
                try:
                    event = json.loads(data)
                except ValueError:
                    counters["rejected"] += 1
                    continue
                if str(event.get("crawlId", crawl_id)) != crawl_id:
                    counters["rejected"] += 1
                    continue
                counters["forwarded"] += 1
                yield f"data: {data}\n\n"
        except redis.ConnectionError:
            counters["errors"] += 1
        finally:
            counters["connections"] -= 1
            await pubsub.aclose()

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


@app.get("/bench/stats")
async def stats() -> dict[str, object]:
    return {"published": 0, "dropped": 0, **counters}
