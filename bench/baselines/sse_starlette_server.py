"""Baseline: the same seed-style fan-out served through sse-starlette's EventSourceResponse.

Run:  uvicorn sse_starlette_server:app --app-dir bench/baselines --loop uvloop --http httptools
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from baseline_hub import CHANNEL, HEARTBEAT, HEARTBEAT_INTERVAL_S, Hub, bench_router
from fastapi import FastAPI
from sse_starlette.sse import EventSourceResponse

# sse-starlette sends its own ping comments, so the hub adds none.
hub = Hub(heartbeat=False)


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with hub.running():
        yield


app = FastAPI(lifespan=lifespan)
app.include_router(bench_router(hub))


@app.get("/stream/sse")
async def stream_sse(channel: str = CHANNEL) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict[str, str]]:
        client = hub.register()
        try:
            while True:
                item = await client.queue.get()
                if client.dropped:
                    return
                if item is HEARTBEAT:
                    continue
                seq, data = item
                yield {"id": str(seq), "data": data}
        finally:
            hub.unregister(client)

    return EventSourceResponse(events(), ping=int(HEARTBEAT_INTERVAL_S))
