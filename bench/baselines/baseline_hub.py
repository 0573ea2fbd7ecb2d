"""Seed-style fan-out shared by the Python baseline servers.

This is deliberately the design the seed incidents used, not a good one: one
bounded ``asyncio.Queue`` per client, a broadcast loop that copies every event
reference into every queue with ``put_nowait``, and a client whose queue is full
dropped on the spot (the seeds' "non-blocking broadcast"). The event JSON is
encoded once per event; each client still formats its own frame, as a generator
that yields ``f"data: ...\\n\\n"`` does.

Also holds the benchmark control endpoints every baseline shares:
``POST /bench/publish?rate=&duration=&size=`` and ``GET /bench/stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Query

CLIENT_QUEUE_SIZE = 50  # the seeds' per-client buffer
HEARTBEAT_INTERVAL_S = 15.0
CHANNEL = "bench"

# Items a client queue carries besides (seq, data_json) tuples.
HEARTBEAT = object()


class Client:
    """One open stream: its queue, and whether the broadcaster gave up on it."""

    __slots__ = ("queue", "dropped")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=CLIENT_QUEUE_SIZE)
        self.dropped = False


class Hub:
    def __init__(self, *, heartbeat: bool = True) -> None:
        self.clients: set[Client] = set()
        self.events: asyncio.Queue[object] = asyncio.Queue()
        self.heartbeat = heartbeat
        self.open_streams = 0
        self.dropped = 0
        self.seq = 0
        self._publisher: asyncio.Task[None] | None = None

    def register(self) -> Client:
        client = Client()
        self.clients.add(client)
        self.open_streams += 1
        return client

    def unregister(self, client: Client) -> None:
        self.clients.discard(client)
        self.open_streams -= 1

    async def _broadcast_loop(self) -> None:
        while True:
            item = await self.events.get()
            for client in list(self.clients):  # a copy: dropping mutates the set
                try:
                    client.queue.put_nowait(item)
                except asyncio.QueueFull:
                    client.dropped = True
                    self.clients.discard(client)
                    self.dropped += 1

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            self.events.put_nowait(HEARTBEAT)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self._broadcast_loop())]
        if self.heartbeat:
            tasks.append(asyncio.create_task(self._heartbeat_loop()))
        try:
            yield
        finally:
            for task in [*tasks, self._publisher]:
                if task is not None:
                    task.cancel()

    def publish(self, pad: str) -> None:
        self.seq += 1
        data = json.dumps(
            {"t": time.time_ns() // 1000, "seq": self.seq, "pad": pad}, separators=(",", ":")
        )
        self.events.put_nowait((self.seq, data))

    async def _publish_for(self, rate: float, duration: float, size: int) -> None:
        # Pad so the encoded payload is about `size` bytes.
        base = len(
            json.dumps(
                {"t": time.time_ns() // 1000, "seq": self.seq + 1, "pad": ""}, separators=(",", ":")
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
                self.publish(pad)
                sent += 1
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))

    def start_publisher(self, rate: float, duration: float, size: int) -> int:
        if self._publisher is not None and not self._publisher.done():
            self._publisher.cancel()
        self._publisher = asyncio.create_task(self._publish_for(rate, duration, size))
        return round(rate * duration)


def bench_router(hub: Hub) -> APIRouter:
    router = APIRouter(prefix="/bench")

    @router.post("/publish")
    async def publish(
        rate: float = Query(gt=0), duration: float = Query(gt=0), size: int = Query(100, ge=0)
    ) -> dict[str, object]:
        if rate * duration > 100_000_000:
            raise HTTPException(422, f"rate*duration={rate * duration:g} events; at most 1e8")
        events = hub.start_publisher(rate, duration, size)
        return {"started": True, "events": events}

    @router.get("/stats")
    async def stats() -> dict[str, int]:
        return {
            "connections": hub.open_streams,
            "subscribers": len(hub.clients),
            "dropped": hub.dropped,
            "published": hub.seq,
        }

    return router
