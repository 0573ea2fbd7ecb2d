"""What Debian's librdkafka 2.0.2 does against a Kafka 4.x broker (KRaft), through the
Python API: producer, admin client, node mode, session mode and the assign-only replay
consumer. The broker is the 4.x one ``scripts/kafka.sh`` runs beside the default 3.9 broker
(``kafka4_bootstrap`` in conftest.py); docs/kafka.md's "Kafka 4.x" section cites this file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sessionstream as ss

from .conftest import KAFKA4_ENV, KAFKA4_VERSION
from .native_support import Reader, wait_for

pytestmark = pytest.mark.kafka

LIBRDKAFKA = "2.0.2"


@pytest.fixture(scope="module", autouse=True)
def librdkafka_2_0_2() -> None:
    # These tests state what 2.0.2 does; a build against another librdkafka proves nothing
    # about it (the Debian 12 build and the wheel carry 2.0.2).
    version = ss._core.librdkafka_version()
    if version != LIBRDKAFKA:
        pytest.skip(f"built against librdkafka {version}, not {LIBRDKAFKA}")


@pytest.fixture(scope="module")
def admin4(kafka4_bootstrap: str) -> ss.KafkaAdmin:
    return ss.KafkaAdmin({"bootstrap.servers": kafka4_bootstrap})


@pytest.fixture
def topic4(admin4: ss.KafkaAdmin, request: pytest.FixtureRequest) -> Callable[..., str]:
    def create(partitions: int = 1) -> str:
        name = f"k4-{request.node.name[:40]}-{os.urandom(4).hex()}"
        admin4.create_topic(name, partitions)
        wait_for(lambda: admin4.partitions(name, 5.0) == partitions, what=f"{name} metadata")
        return name

    return create


@pytest.fixture
def hub() -> Iterator[ss.Hub]:
    hub = ss.Hub(history_max_events=3)
    yield hub
    hub.close()


@pytest.fixture
def manager(hub: ss.Hub) -> ss.ConnectionManager:
    return ss.ConnectionManager(hub)


@pytest.fixture
def producer4(kafka4_bootstrap: str) -> Iterator[ss.KafkaSink]:
    sink = ss.KafkaSink(properties={"bootstrap.servers": kafka4_bootstrap})
    sink.start()
    yield sink
    sink.stop(5.0)


@pytest.fixture
def source4(hub: ss.Hub, kafka4_bootstrap: str) -> Iterator[Callable[..., ss.KafkaSource]]:
    sources: list[ss.KafkaSource] = []

    def start(topics: list[str], **kw: object) -> ss.KafkaSource:
        source = ss.KafkaSource(
            hub,
            properties={"bootstrap.servers": kafka4_bootstrap},
            topics=topics,
            node_id=f"k4-{len(sources)}-{time.monotonic_ns()}",
            **kw,
        )
        source.start()
        sources.append(source)
        return source

    yield start
    for source in sources:
        source.stop()


def errors_noted(notes: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [n for n in notes if n[0] in ("error", "warning")]


def test_broker_is_kafka_4(kafka4_bootstrap: str) -> None:
    assert kafka4_bootstrap == "127.0.0.1:19192"
    log = (Path(KAFKA4_ENV["KAFKA_DATA"]) / "kafka.log").read_text()
    assert f"Kafka version: {KAFKA4_VERSION} " in log
    assert KAFKA4_VERSION.startswith("4.")


def test_producer_produces_and_flushes(producer4: ss.KafkaSink, topic4: Callable[..., str]) -> None:
    topic = topic4(partitions=3)
    for n in range(20):
        producer4.produce(topic, f"v{n}", key=f"k{n % 4}", headers=[("h", "1")])
    assert producer4.flush(10) == 0
    health = producer4.health()
    assert (health["produced"], health["delivered"], health["failed"]) == (20, 20, 0)
    assert health["status"] == "healthy" and health["errors"] == 0, health
    assert not errors_noted(producer4.take_log_notes())


def test_admin_creates_topics_and_lists_describes_groups(
    admin4: ss.KafkaAdmin, topic4: Callable[..., str]
) -> None:
    assert admin4.reachable(5.0)
    topic = topic4(partitions=3)  # CreateTopics, then metadata with 3 partitions
    assert admin4.partitions(topic, 5.0) == 3
    assert admin4.partitions(f"{topic}-absent", 5.0) is None
    groups = admin4.list_groups()  # ListGroups: answers, raises nothing
    assert isinstance(groups, list)
    assert admin4.describe_group(f"absent-{os.urandom(4).hex()}") is None
    admin4.create_topic(topic, 3)  # TOPIC_ALREADY_EXISTS comes back and counts as done
    assert admin4.partitions(topic, 5.0) == 3


def test_node_mode_joins_its_group_and_streams(
    source4: Callable[..., ss.KafkaSource],
    manager: ss.ConnectionManager,
    producer4: ss.KafkaSink,
    admin4: ss.KafkaAdmin,
    topic4: Callable[..., str],
) -> None:
    topic = topic4(partitions=3)
    source = source4([topic], channel="{topic}:{key}")
    # The consumer-group join (FindCoordinator, JoinGroup, SyncGroup) succeeds.
    assert source.wait_ready(20), source.health()
    health = source.health()
    assert health["status"] == "healthy" and health["reason"] == "", health
    assert sorted(a["partition"] for a in health["assignments"]) == [0, 1, 2]
    described = admin4.describe_group(source.group_id)
    assert described is not None and described["state"] == "Stable", described
    assert len(described["members"]) == 1
    assert source.group_id in {g["group"] for g in admin4.list_groups()}

    alice = Reader(
        manager.open("session-k4-alice", notifier=ss.Notifier(), channels=[f"{topic}:alice"])
    )
    bob = Reader(
        manager.open("session-k4-bob01", notifier=ss.Notifier(), channels=[f"{topic}:bob"])
    )
    for n in range(6):
        who = "alice" if n % 2 == 0 else "bob"
        producer4.produce(topic, json.dumps({"n": n}), key=who)
    assert producer4.flush(10) == 0
    assert [json.loads(f.data)["n"] for f in alice.wait_events(3)] == [0, 2, 4]
    assert [json.loads(f.data)["n"] for f in bob.wait_events(3)] == [1, 3, 5]
    health = source.health()
    assert (health["received"], health["published"], health["errors"]) == (6, 6, 0), health
    assert not errors_noted(source.take_log_notes())

    source.stop()  # LeaveGroup: no member is left behind
    after = admin4.describe_group(source.group_id)
    assert after is None or after["members"] == [], after


def test_replay_consumer_assign_only_seeks_kafka(
    source4: Callable[..., ss.KafkaSource],
    manager: ss.ConnectionManager,
    producer4: ss.KafkaSink,
    topic4: Callable[..., str],
) -> None:
    topic = topic4()
    source = source4([topic], channel="{key}", replay_max_events=8)
    assert source.wait_ready(20), source.health()
    live = Reader(manager.open("session-k4-live1", notifier=ss.Notifier(), channels=["near"]))
    for n in range(7):  # more than the hub's ring (3), within the replay bound (8)
        producer4.produce(topic, json.dumps({"n": n}), key="near")
    assert producer4.flush(10) == 0
    first = live.wait_events(7)[0]
    assert json.loads(first.data)["n"] == 0

    # A resume older than the ring: the assign-only replay consumer (no group) reads the
    # missing records back from the broker.
    resumed = Reader(
        manager.open(
            "session-k4-back1", notifier=ss.Notifier(), channels=["near"], last_event_id=first.id
        )
    )
    assert resumed.connection.resume == "exact"
    got = resumed.wait_events(6)
    assert [json.loads(f.data)["n"] for f in got] == [1, 2, 3, 4, 5, 6]
    assert not [f for f in resumed.poll() if f.event == "gap"]
    replay = source.health()["replay"]
    assert replay["replays"] == 1 and replay["replayed_events"] >= 3, replay
    assert not errors_noted(source.take_log_notes())


def test_session_mode_joins_and_deletes_its_group(
    hub: ss.Hub,
    manager: ss.ConnectionManager,
    producer4: ss.KafkaSink,
    admin4: ss.KafkaAdmin,
    kafka4_bootstrap: str,
    topic4: Callable[..., str],
) -> None:
    topic = topic4()
    pool = ss.KafkaSessionPool(
        hub,
        properties={"bootstrap.servers": kafka4_bootstrap},
        domains=[("party", topic)],
        group_prefix="ssk4",
    )
    pool.start()
    try:
        sid = "session-k4-pool1"
        mine = Reader(manager.open(sid, notifier=ss.Notifier(), channels=[]))
        group = pool.open(sid, "party")["group_id"]
        assert pool.wait_assigned(sid, "party", 20), pool.health()
        producer4.produce(topic, json.dumps({"party": 1}))
        assert producer4.flush(10) == 0
        assert [(f.event, json.loads(f.data)) for f in mine.wait_events(1)] == [
            ("party", {"party": 1})
        ]
        described = admin4.describe_group(group)
        assert described is not None and described["state"] == "Stable", described

        assert pool.close(sid, "party") is True
        assert pool.wait_closed(20)
        assert admin4.describe_group(group) is None  # left, then deleted (DeleteGroups)
        health = pool.health()
        assert health["status"] == "healthy" and health["groups_deleted"] == 1, health
        assert not errors_noted(pool.take_log_notes())
    finally:
        pool.stop()
