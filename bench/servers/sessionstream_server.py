"""sessionstream under the same benchmark endpoints as the baselines.

Run, native delivery (the stream routes hand their sockets to the engine):
      python -m uvicorn sessionstream_server:app --app-dir bench/servers --loop uvloop \
          --http sessionstream.server:HttpToolsHandoffProtocol \
          --ws sessionstream.server:WebSocketsSansIOHandoffProtocol
Run, Python delivery (plain uvicorn offers no handoff, so the app delivers in Python):
      python -m uvicorn sessionstream_server:app --app-dir bench/servers --loop uvloop \
          --http httptools

Same routes and payloads as ``bench/baselines``: ``GET /stream/sse?channel=bench``,
``WS /stream/ws`` (subscribe message), ``POST /bench/publish?rate=&duration=&size=``,
``GET /bench/stats``. Connection caps are raised so the benchmark measures delivery,
not admission; the mailbox bound and slow-consumer policy stay at their defaults.
A WebSocket message ``{"type":"echo","ts":...}`` goes through a registered message
handler that replies ``{"type":"echo","ts":<the same>}``: the chat round trip.
``BENCH_HEARTBEAT`` sets the SSE heartbeat interval (s). ``SESSIONSTREAM_REDIS_*`` turn on
Redis (the ``redis`` scenario): with ``redis_streams`` ``/bench/publish`` goes through the
shared stream to every node, and ``/bench/stats`` carries the ``redis`` health section.
``BENCH_GC_THRESHOLD`` (unset by default) sets the cyclic GC's generation-0 threshold and
freezes the startup heap: an experiment knob for the profile, not what the product does.

``POST /bench/profile?action=start`` / ``?action=stop&path=FILE`` runs cProfile on the
event loop thread between the two calls and writes pstats to ``FILE``: the runner's
``profile`` scenario uses it to attribute Python time within a measured step.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import time
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query

from sessionstream.fastapi import MessageContext, StreamConfig, StreamHub

CHANNEL = "bench"

if os.environ.get("BENCH_GC_THRESHOLD"):
    gc.freeze()
    gc.set_threshold(int(os.environ["BENCH_GC_THRESHOLD"]), 10, 10)

# ``SESSIONSTREAM_*`` variables apply (the runner passes only the Redis ones it means);
# the caps below win over them.
hub = StreamHub(
    StreamConfig.from_env(
        max_connections=200_000,
        max_per_ip=200_000,
        max_per_session=200_000,
        # One load client opens every connection from 127.0.0.1, 10,000 at once.
        connect_rate_per_ip=0.0,
        heartbeat_interval=float(os.environ.get("BENCH_HEARTBEAT", "15")),
    )
)
app = FastAPI()
app.include_router(hub.router)


@hub.message_handler("echo")
async def echo(ctx: MessageContext, message: dict[str, Any]) -> dict[str, Any]:
    # The chat round trip: client message -> Python handler -> reply to that connection.
    return {"type": "echo", "ts": message.get("ts")}


bench = APIRouter(prefix="/bench")
state: dict[str, object] = {"seq": 0, "task": None}
profiler: dict[str, cProfile.Profile] = {}


def publish_one(pad: str) -> None:
    seq = int(state["seq"]) + 1
    state["seq"] = seq
    data = json.dumps({"t": time.time_ns() // 1000, "seq": seq, "pad": pad}, separators=(",", ":"))
    hub.publish(CHANNEL, data, json=True)


async def publish_for(rate: float, duration: float, size: int) -> None:
    # Same padding rule as the baselines (compact separators), so payloads match in size.
    base = len(
        json.dumps(
            {"t": time.time_ns() // 1000, "seq": int(state["seq"]) + 1, "pad": ""},
            separators=(",", ":"),
        )
    )
    pad = "x" * max(0, size - base)
    total = round(rate * duration)
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while sent < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        while sent < due:
            publish_one(pad)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))


@bench.post("/publish")
async def start_publishing(
    rate: float = Query(gt=0), duration: float = Query(gt=0), size: int = Query(100, ge=0)
) -> dict[str, object]:
    if rate * duration > 100_000_000:
        raise HTTPException(422, f"rate*duration={rate * duration:g} events; at most 1e8")
    task = state["task"]
    if isinstance(task, asyncio.Task) and not task.done():
        task.cancel()
    state["task"] = asyncio.create_task(publish_for(rate, duration, size))
    return {"started": True, "events": round(rate * duration)}


@bench.get("/stats")
async def stats() -> dict[str, object]:
    metrics = hub.metrics()
    return {
        "connections": metrics["active_connections"],
        # Named as in the baselines: clients the server gave up on.
        "dropped": metrics["hub_slow_consumer_disconnects"],
        "published": state["seq"],
        # Which path delivers: native (handed-off sockets) or Python, per transport.
        "delivery": hub.delivery_counts(),
        "engine": native.metrics() if (native := hub.native_delivery) is not None else None,
        "redis": redis.health() if (redis := hub.redis) is not None else None,
        **metrics,
    }


@bench.post("/profile")
async def profile(action: str = Query(pattern="^(start|stop)$"), path: str = "") -> dict[str, str]:
    if action == "start":
        prof = cProfile.Profile()
        profiler["current"] = prof
        prof.enable()
        return {"profiling": "started"}
    prof = profiler.pop("current", None)
    if prof is None:
        raise HTTPException(409, "not profiling")
    prof.disable()
    if path:
        prof.dump_stats(path)
    return {"profiling": "stopped", "path": path}


app.include_router(bench)
