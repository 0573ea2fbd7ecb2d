"""A build without librdkafka or hiredis still imports; the missing classes say why."""

from __future__ import annotations

import importlib

import pytest

import sessionstream as ss
from sessionstream import _core

no_kafka = pytest.mark.skipif(_core.HAS_KAFKA, reason="this build has Kafka")
with_kafka = pytest.mark.skipif(not _core.HAS_KAFKA, reason="this build has no Kafka")
no_redis = pytest.mark.skipif(_core.HAS_REDIS, reason="this build has Redis")


def test_build_flags_are_booleans() -> None:
    assert isinstance(_core.HAS_KAFKA, bool)
    assert isinstance(_core.HAS_REDIS, bool)


def test_every_layer_imports() -> None:
    for name in ("sessionstream.fastapi", "sessionstream.kafka", "sessionstream.redis_backend"):
        assert importlib.import_module(name).__name__ == name


@with_kafka
def test_kafka_build_reports_its_librdkafka() -> None:
    assert _core.librdkafka_version().split(".")[0].isdigit()


@no_kafka
@pytest.mark.parametrize("name", ["KafkaSource", "KafkaSessionPool", "KafkaSink", "KafkaAdmin"])
def test_kafka_classes_of_a_build_without_kafka_raise_a_clear_error(name: str) -> None:
    with pytest.raises(ss.SessionStreamError, match="without librdkafka"):
        getattr(ss, name)(ss.Hub(), {"bootstrap.servers": "localhost:9092"})


@no_kafka
def test_kafka_functions_of_a_build_without_kafka_raise_a_clear_error() -> None:
    with pytest.raises(ss.SessionStreamError, match="without librdkafka"):
        ss.event_hubs_properties("Endpoint=sb://x.servicebus.windows.net/")
    assert issubclass(ss.KafkaPoolFullError, ss.KafkaError)
    assert issubclass(ss.KafkaError, ss.SessionStreamError)


@no_redis
@pytest.mark.parametrize("name", ["RedisSource", "RedisSessionStore", "RedisStreamBus"])
def test_redis_classes_of_a_build_without_redis_raise_a_clear_error(name: str) -> None:
    with pytest.raises(ss.SessionStreamError, match="without hiredis"):
        getattr(ss, name)("redis://localhost:6379/0")
