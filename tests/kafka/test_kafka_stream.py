"""``KafkaStream`` in-process: lifecycle with a StreamHub and logging of malformed records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

import sessionstream as ss
from sessionstream.config import StreamConfig
from sessionstream.fastapi import StreamHub
from sessionstream.fastapi.kafka import KafkaStream
from sessionstream.kafka import KafkaSettings

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


async def test_malformed_records_are_logged_once_per_kind_and_never_stop_the_stream(
    kafka_bootstrap: str,
    producer: ss.KafkaSink,
    new_topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = new_topic(partitions=1)
    hub = StreamHub(StreamConfig(drain_on_signal=False))
    stream = KafkaStream(
        hub,
        KafkaSettings(
            bootstrap_servers=kafka_bootstrap,
            topics=(topic,),
            channel="acct:{json:account}:{key}",
            log_interval=0.05,
            sink=False,
        ),
    )
    caplog.set_level(logging.INFO, logger="sessionstream.kafka")
    await hub.start()
    try:
        await stream.start()
        assert stream.source is not None and stream.health()["status"] == "healthy"
        for value, key in [
            ("{bad", "k"),
            ('{"account": "A"}', None),
            ("{worse", "k"),
            ('{"x": 1}', "k"),
            ('{"account": "A"}', "k"),
            ('{"account": "A"}', None),
            ("[", "k"),
        ]:
            producer.produce(topic, value, key=key)
        assert producer.flush(10) == 0
        for _ in range(200):
            if stream.source.health()["received"] == 7:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few log pumps
        health = stream.health()["source"]
        assert health["published"] == 1
        assert health["skipped"]["bad_json"] == 3
        assert health["skipped"]["missing_key"] == 2
        assert health["skipped"]["missing_field"] == 1
        assert stream.source.running
    finally:
        await stream.stop()
        await hub.shutdown()
    skip_lines = [r for r in caplog.records if "[skip." in r.getMessage()]
    kinds = sorted(r.getMessage().rsplit("[", 1)[1].rstrip("]") for r in skip_lines)
    assert kinds == ["skip.bad_json", "skip.missing_field", "skip.missing_key"]
    assert all(r.levelno == logging.WARNING for r in skip_lines)
    assert not stream.running
    assert stream.health()["status"] == "stopped"
