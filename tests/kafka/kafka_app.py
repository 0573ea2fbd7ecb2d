"""The stream app with Kafka, configured by ``SESSIONSTREAM_*`` and
``SESSIONSTREAM_KAFKA_*``, plus a test-only route to produce records."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from sessionstream.fastapi import StreamHub
from sessionstream.fastapi.kafka import KafkaStream
from sessionstream.kafka import KafkaSettings


class Produce(BaseModel):
    topic: str
    data: Any = None
    key: str | None = None
    count: int = 1


hub = StreamHub()
kafka = KafkaStream(hub, KafkaSettings.from_env())
app = FastAPI()
app.include_router(hub.router)
app.include_router(kafka.router)


@app.post("/test/produce")
async def produce(body: Produce) -> dict[str, int]:
    for n in range(body.count):
        data = body.data if body.count == 1 else {"n": n, "data": body.data}
        kafka.publish(body.topic, data, key=body.key)
    assert kafka.sink is not None
    left = await asyncio.to_thread(kafka.sink.flush, 10.0)
    return {"produced": body.count, "in_flight": left}
