"""Kafka configuration without a broker: settings, environment, Event Hubs, bad input."""

from __future__ import annotations

import pytest

import sessionstream as ss
from sessionstream import _core
from sessionstream.fastapi.kafka import KafkaStream
from sessionstream.kafka import KafkaSettings, parse_domains, parse_properties

CONNECTION = (
    "Endpoint=sb://demo-ns.servicebus.windows.net/;SharedAccessKeyName=listen;"
    "SharedAccessKey=c2VjcmV0+a2V5/w==;EntityPath=party"
)


def test_defaults_carry_the_seed_000_consumer_settings() -> None:
    defaults = _core.kafka_consumer_defaults()
    assert defaults["max.poll.interval.ms"] == "300000"
    assert defaults["connections.max.idle.ms"] == "540000"
    assert defaults["socket.timeout.ms"] == "30000"  # librdkafka's consumer request timeout
    assert _core.kafka_producer_defaults()["request.timeout.ms"] == "30000"
    assert defaults["fetch.wait.max.ms"] == "10"


def test_settings_from_env() -> None:
    settings = KafkaSettings.from_env(
        {
            "SESSIONSTREAM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
            "SESSIONSTREAM_KAFKA_TOPICS": "party, deposits",
            "SESSIONSTREAM_KAFKA_CHANNEL": "{topic}:{key}",
            "SESSIONSTREAM_KAFKA_MODE": "both",
            "SESSIONSTREAM_KAFKA_DOMAINS": "party,deposits:bank.deposits",
            "SESSIONSTREAM_KAFKA_PROPERTIES": "fetch.wait.max.ms=50; client.id = app",
            "SESSIONSTREAM_KAFKA_IDLE_TIMEOUT": "60",
            "SESSIONSTREAM_KAFKA_DELETE_GROUPS": "no",
            "SESSIONSTREAM_KAFKA_REPLAY_MAX_EVENTS": "5_000",
        }
    )
    assert settings.configured
    assert settings.topics == ("party", "deposits")
    assert settings.domains == {"party": "party", "deposits": "bank.deposits"}
    assert settings.idle_timeout == 60.0 and settings.delete_groups is False
    assert settings.replay_max_events == 5000
    props = settings.client_properties()
    assert props == {
        "bootstrap.servers": "127.0.0.1:9092",
        "fetch.wait.max.ms": "50",
        "client.id": "app",
    }


def test_event_hubs_connection_string_configures_sasl_and_the_topic() -> None:
    settings = KafkaSettings(event_hubs_connection_string=CONNECTION)
    props = settings.client_properties()
    assert props["bootstrap.servers"] == "demo-ns.servicebus.windows.net:9093"
    assert props["security.protocol"] == "SASL_SSL"
    assert props["sasl.mechanisms"] == "PLAIN"
    assert props["sasl.username"] == "$ConnectionString"
    assert props["sasl.password"] == CONNECTION
    assert props["socket.keepalive.enable"] == "true"
    assert int(props["connections.max.idle.ms"]) < 240_000
    assert settings.node_topics == ("party",)
    # The secret never shows in a repr or a redacted copy.
    assert "c2VjcmV0" not in repr(settings)
    assert _core.kafka_redacted(props)["sasl.password"] == "***"
    # Overrides win over the Event Hubs settings.
    custom = settings.replace(properties={"connections.max.idle.ms": 100_000})
    assert custom.client_properties()["connections.max.idle.ms"] == "100000"


def test_event_hubs_parse_reports_no_key() -> None:
    parsed = _core.parse_event_hubs_connection_string(CONNECTION)
    assert parsed == {
        "host": "demo-ns.servicebus.windows.net",
        "key_name": "listen",
        "entity_path": "party",
        "bootstrap": "demo-ns.servicebus.windows.net:9093",
    }


@pytest.mark.parametrize(
    "bad",
    [
        "Endpoint=sb://ns.servicebus.windows.net/",
        "SharedAccessKeyName=a;SharedAccessKey=b",
        "not a connection string",
    ],
)
def test_bad_event_hubs_connection_string_is_refused_early(bad: str) -> None:
    with pytest.raises(ss.InvalidArgumentError, match="Endpoint=sb://"):
        KafkaSettings(event_hubs_connection_string=bad)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SESSIONSTREAM_KAFKA_MODE": "cluster"}, "mode"),
        ({"SESSIONSTREAM_KAFKA_PROPERTIES": "novalue"}, "name=value"),
        ({"SESSIONSTREAM_KAFKA_MAX_CONSUMERS": "0"}, "max_consumers"),
        ({"SESSIONSTREAM_KAFKA_SINK": "maybe"}, "SINK"),
    ],
)
def test_bad_settings_name_the_field(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KafkaSettings.from_env(env)


def test_parsers() -> None:
    assert parse_properties("a=1\nb = x=y ;;") == {"a": "1", "b": "x=y"}
    assert parse_domains("party, deposits:t1,") == {"party": "party", "deposits": "t1"}


def test_native_constructors_validate_their_arguments() -> None:
    hub = ss.Hub()
    with pytest.raises(ss.InvalidArgumentError, match="bootstrap.servers"):
        ss.KafkaSource(hub, properties={}, topics=["t"])
    with pytest.raises(ss.InvalidArgumentError, match="at least one topic"):
        ss.KafkaSource(hub, properties={"bootstrap.servers": "h:1"}, topics=[])
    with pytest.raises(ss.InvalidArgumentError, match="unknown placeholder"):
        ss.KafkaSource(hub, properties={"bootstrap.servers": "h:1"}, topics=["t"], channel="{x}")
    with pytest.raises(ss.InvalidArgumentError, match="no.such.property"):
        ss.KafkaSource(
            hub, properties={"bootstrap.servers": "h:1", "no.such.property": 1}, topics=["t"]
        )
    with pytest.raises(ss.InvalidArgumentError, match="payload"):
        ss.KafkaSource(hub, properties={"bootstrap.servers": "h:1"}, topics=["t"], payload="xml")
    pool = ss.KafkaSessionPool(
        hub, properties={"bootstrap.servers": "h:1"}, domains=[("party", "party")]
    )
    with pytest.raises(ss.ClosedError):
        pool.open("session-aaaa1111", "party")  # not started
    pool.start()
    try:
        with pytest.raises(ss.InvalidArgumentError, match="use one of: party"):
            pool.open("session-aaaa1111", "secrets")
        with pytest.raises(ss.InvalidArgumentError, match="session id"):
            pool.open("bad id", "party")
    finally:
        pool.stop()
    hub.close()


def test_not_configured_means_nothing_starts() -> None:
    from sessionstream.fastapi import StreamHub

    stream = KafkaStream(StreamHub(), KafkaSettings())
    assert stream.health() == {
        "configured": False,
        "mode": "node",
        "status": "disabled",
        "reasons": ["Kafka is not configured"],
    }
    with pytest.raises(ss.ClosedError):
        stream.publish("t", {"x": 1})


def test_event_hubs_settings_are_accepted_by_librdkafka() -> None:
    """librdkafka checks every property when a client is configured (SASL_SSL and PLAIN
    need its SSL and SASL support); nothing connects until start()."""
    props = KafkaSettings(event_hubs_connection_string=CONNECTION).client_properties()
    hub = ss.Hub()
    ss.KafkaSource(hub, properties=props, topics=["party"])
    ss.KafkaSink(properties=props)
    ss.KafkaSessionPool(hub, properties=props, domains=[("party", "party")])
    hub.close()
