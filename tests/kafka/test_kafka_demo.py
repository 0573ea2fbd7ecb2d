"""The demo app streams its Kafka domains when a broker is configured."""

from __future__ import annotations

import httpx
import pytest

import sessionstream as ss
from tests.integration.support import ServerProcess, SSEClient

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


@pytest.fixture
def demo_with_kafka(kafka_bootstrap: str, kafka_admin: ss.KafkaAdmin):
    for domain in ("party", "deposits"):
        if kafka_admin.partitions(domain) is None:
            kafka_admin.create_topic(domain, 3)
    server = ServerProcess(
        "examples.demo.app:app",
        {
            "SESSIONSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SESSIONSTREAM_KAFKA_READY_TIMEOUT": "20",
        },
    )
    try:
        yield server.start(timeout=40.0)
    finally:
        server.stop()


async def test_domains_reach_sessions_and_health_covers_kafka(
    demo_with_kafka: ServerProcess, producer: ss.KafkaSink
) -> None:
    async with SSEClient(demo_with_kafka.url, ["party", "deposits"]) as stream:
        producer.produce("party", '{"guest": "ada"}', key="k1")
        producer.produce("deposits", '{"amount": 5}', key="k2")
        assert producer.flush(10) == 0
        got = {}
        while len(got) < 2:
            event = await stream.next(15)
            if event.data:
                got[event.json().get("guest", event.json().get("amount"))] = event
        assert set(got) == {"ada", 5}
    async with httpx.AsyncClient(timeout=10) as client:
        health = (await client.get(demo_with_kafka.url + "/health")).json()
    assert health["kafka"]["status"] == "healthy"
    assert health["kafka"]["mode"] == "both"
