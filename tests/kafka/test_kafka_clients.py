"""``sessionstream.kafka.KafkaClients``: Kafka on a plain native hub, no web framework."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

import sessionstream as ss
from sessionstream.kafka import KafkaClients, KafkaSettings

from .native_support import Reader

pytestmark = pytest.mark.kafka


@pytest.fixture
def hub() -> Iterator[ss.Hub]:
    hub = ss.Hub()
    yield hub
    hub.close()


def test_clients_stream_to_a_plain_hub_and_stop_cleanly(
    hub: ss.Hub, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topics=(topic,),
        channel="{topic}:{key}",
        sink=True,
        node_id="plain-clients",
    )
    clients = KafkaClients(hub, settings)
    clients.start()
    try:
        assert clients.running and clients.source is not None and clients.sink is not None
        assert clients.wait_ready(20), clients.health()
        manager = ss.ConnectionManager(hub)
        alice = Reader(
            manager.open("session-alice-1", notifier=ss.Notifier(), channels=[f"{topic}:alice"])
        )
        for n in range(3):
            clients.publish(topic, {"n": n}, key="alice")
        clients.publish(topic, {"n": 99}, key="bob")
        assert clients.sink.flush(10) == 0
        got = alice.wait_events(3)
        assert [json.loads(frame.data)["n"] for frame in got] == [0, 1, 2]
        health = clients.health()
        assert health["status"] == "healthy", health
        assert health["sink"]["delivered"] >= 4
    finally:
        clients.stop()
    assert not clients.running
    assert clients.health()["status"] == "stopped"


def test_session_mode_operations_without_a_pool_say_how_to_turn_it_on(hub: ss.Hub) -> None:
    clients = KafkaClients(hub, KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    with pytest.raises(ss.ClosedError, match="session mode is not running"):
        clients.open_session("session-alice-1", "party")
    with pytest.raises(ss.ClosedError, match="producer is not running"):
        clients.publish("t", {"n": 1})
