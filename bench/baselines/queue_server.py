"""Baseline: the seed-style FastAPI streaming server (one asyncio.Queue per client).

Run:  uvicorn queue_server:app --app-dir bench/baselines --loop uvloop --http httptools
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from baseline_hub import CHANNEL, HEARTBEAT, Hub, bench_router
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

hub = Hub()


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with hub.running():
        yield


app = FastAPI(lifespan=lifespan)
app.include_router(bench_router(hub))


@app.get("/stream/sse")
async def stream_sse(channel: str = CHANNEL) -> StreamingResponse:
    async def frames() -> AsyncIterator[str]:
        client = hub.register()
        try:
            while True:
                item = await client.queue.get()
                if client.dropped:
                    return  # ends the response: the client was too slow
                if item is HEARTBEAT:
                    yield ": keep-alive\n\n"
                    continue
                seq, data = item
                yield f"id: {seq}\ndata: {data}\n\n"
        finally:
            hub.unregister(client)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@app.websocket("/stream/ws")
async def stream_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        hello = await websocket.receive_json()
    except (WebSocketDisconnect, ValueError):
        return
    if not isinstance(hello, dict) or hello.get("type") != "subscribe":
        await websocket.close(code=1008, reason="expected a subscribe message")
        return
    channels = hello.get("channels") or [CHANNEL]
    await websocket.send_text(json.dumps({"type": "subscribed", "channels": channels}))

    client = hub.register()
    closed = False

    async def read_until_disconnect() -> None:
        # The queue wait cannot see a disconnect; this reader wakes it instead. It also
        # answers {"type":"echo","ts":...} at once (the benchmark's chat round trip).
        nonlocal closed
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("type") == "echo":
                    await websocket.send_text(
                        json.dumps([{"type": "echo", "ts": message.get("ts")}])
                    )
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        closed = True
        with contextlib.suppress(Exception):
            client.queue.put_nowait(None)

    reader = asyncio.create_task(read_until_disconnect())
    try:
        while True:
            item = await client.queue.get()
            if closed or item is None:
                return
            if client.dropped:
                await websocket.close(code=1008, reason="slow consumer")
                return
            if item is HEARTBEAT:
                continue  # the WebSocket layer pings on its own
            seq, data = item
            await websocket.send_text(
                f'[{{"type":"event","id":"{seq}","channel":"{CHANNEL}","event":"message","data":{data}}}]'
            )
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    finally:
        reader.cancel()
        hub.unregister(client)
