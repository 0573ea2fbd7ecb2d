"""The native Kafka classes against the real broker, without a web server."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator

import pytest

import sessionstream as ss

from .native_support import Reader, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def hub() -> Iterator[ss.Hub]:
    hub = ss.Hub(history_max_events=3)
    yield hub
    hub.close()


@pytest.fixture
def manager(hub: ss.Hub) -> ss.ConnectionManager:
    return ss.ConnectionManager(hub)


@pytest.fixture
def start_source(hub: ss.Hub, kafka_bootstrap: str) -> Iterator[Callable[..., ss.KafkaSource]]:
    sources: list[ss.KafkaSource] = []

    def start(topics: list[str], **kw: object) -> ss.KafkaSource:
        source = ss.KafkaSource(
            hub,
            properties={"bootstrap.servers": kafka_bootstrap},
            topics=topics,
            node_id=f"test-{len(sources)}-{time.monotonic_ns()}",
            **kw,
        )
        source.start()
        sources.append(source)
        assert source.wait_ready(20), source.health()
        return source

    yield start
    for source in sources:
        source.stop()


def reader(
    manager: ss.ConnectionManager, session: str, channels: list[str], **kw: object
) -> Reader:
    return Reader(manager.open(session, notifier=ss.Notifier(), channels=channels, **kw))


def test_records_route_by_key_and_sessions_see_only_their_channel(
    start_source: Callable[..., ss.KafkaSource],
    manager: ss.ConnectionManager,
    producer: ss.KafkaSink,
    new_topic: Callable[..., str],
) -> None:
    topic = new_topic()
    start_source([topic], channel="{topic}:{key}")
    alice = reader(manager, "session-alice-1", [f"{topic}:alice"])
    bob = reader(manager, "session-bob-0001", [f"{topic}:bob"])
    for n in range(6):
        who = "alice" if n % 2 == 0 else "bob"
        producer.produce(topic, json.dumps({"n": n, "to": who}), key=who)
    assert producer.flush(10) == 0
    got_alice = alice.wait_events(3)
    got_bob = bob.wait_events(3)
    time.sleep(0.3)  # anything misrouted would have arrived by now
    assert [json.loads(f.data)["n"] for f in alice.events()] == [0, 2, 4]
    assert [json.loads(f.data)["n"] for f in bob.events()] == [1, 3, 5]
    assert {json.loads(f.data)["to"] for f in got_alice} == {"alice"}
    assert {json.loads(f.data)["to"] for f in got_bob} == {"bob"}


def test_malformed_records_are_counted_skipped_and_noted_once(
    start_source: Callable[..., ss.KafkaSource],
    manager: ss.ConnectionManager,
    producer: ss.KafkaSink,
    new_topic: Callable[..., str],
) -> None:
    topic = new_topic(partitions=1)
    by_json = start_source([topic], channel="acct:{json:account}", payload="json")
    by_key = start_source([topic], channel="key:{key}")
    valid = reader(manager, "session-valid-01", ["acct:A1"])
    records: list[tuple[str, str | None]] = [
        ("{not json", "k"),
        ('{"account": "A1", "n": 0}', None),  # no key: skipped by the key-routed source
        ("[1, 2", "k"),
        ('{"other": 1}', "k"),
        ("\x00\xff binary", None),
        ('{"account": null}', "k"),
        ('{"account": "A1", "n": 1}', "k"),
        ("{", "k"),
    ]
    for value, key in records:
        producer.produce(topic, value, key=key)
    assert producer.flush(10) == 0
    wait_for(lambda: by_json.health()["received"] == len(records), what="all records")
    wait_for(lambda: by_key.health()["received"] == len(records), what="all records")

    health = by_json.health()
    assert health["status"] == "healthy" and health["running"]
    assert health["skipped"]["bad_json"] == 4
    assert health["skipped"]["missing_field"] == 2
    assert health["published"] == 2
    assert [json.loads(f.data)["n"] for f in valid.wait_events(2)] == [0, 1]
    assert by_key.health()["skipped"]["missing_key"] == 2

    notes = by_json.take_log_notes()
    skip_notes = [kind for _, kind, _ in notes if kind.startswith("skip.")]
    assert sorted(skip_notes) == ["skip.bad_json", "skip.missing_field"]  # once per kind
    # More of the same kind is counted, not noted again.
    producer.produce(topic, "{still not json", key="k")
    producer.flush(10)
    wait_for(lambda: by_json.health()["skipped"]["bad_json"] == 5, what="the fifth bad record")
    assert not [n for n in by_json.take_log_notes() if n[1].startswith("skip.")]
    assert [kind for _, kind, _ in by_key.take_log_notes() if kind.startswith("skip.")] == [
        "skip.missing_key"
    ]


def test_resume_older_than_the_ring_seeks_kafka_and_beyond_the_bound_is_a_gap(
    hub: ss.Hub,
    start_source: Callable[..., ss.KafkaSource],
    manager: ss.ConnectionManager,
    producer: ss.KafkaSink,
    new_topic: Callable[..., str],
) -> None:
    topic = new_topic()
    source = start_source([topic], channel="{key}", replay_max_events=8)
    live_near = reader(manager, "session-live-001", ["near"])
    live_far = reader(manager, "session-live-002", ["far"])

    def produce(key: str, count: int, start: int) -> None:
        for n in range(start, start + count):
            producer.produce(topic, json.dumps({"n": n}), key=key)
        assert producer.flush(10) == 0

    produce("near", 1, 0)
    produce("far", 1, 0)
    near_id = live_near.wait_events(1)[0].id
    far_id = live_far.wait_events(1)[0].id
    produce("near", 6, 1)  # 7 events on "near": more than the ring (3), within the bound (8)
    produce("far", 12, 1)  # 13 on "far": beyond the bound
    live_near.wait_events(7)
    live_far.wait_events(13)
    live_ids = {f.id: f.data for f in live_near.events()}

    resumed = reader(manager, "session-near-001", ["near"], last_event_id=near_id)
    assert resumed.connection.resume == "exact"
    got = resumed.wait_events(6)
    assert [json.loads(f.data)["n"] for f in got] == [1, 2, 3, 4, 5, 6]
    # Replayed events carry the ids they had live: no duplicate after a later resume.
    assert all(live_ids[f.id] == f.data for f in got)
    assert not [f for f in resumed.poll() if f.event == "gap"]
    replay = source.health()["replay"]
    assert replay["replays"] >= 1 and replay["replayed_events"] >= 3

    gapped = reader(manager, "session-far-0001", ["far"], last_event_id=far_id)
    assert gapped.connection.resume == "gap"
    frames = wait_for(lambda: len(gapped.poll()) >= 4 and gapped.frames, what="gap + ring")
    assert frames[0].event == "gap"
    assert [json.loads(f.data)["n"] for f in gapped.events()] == [10, 11, 12]


def test_session_pool_streams_to_the_session_and_explicit_disconnect_leaves_the_group(
    hub: ss.Hub,
    manager: ss.ConnectionManager,
    producer: ss.KafkaSink,
    kafka_admin: ss.KafkaAdmin,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    party, deposits = new_topic("party"), new_topic("deposits")
    pool = ss.KafkaSessionPool(
        hub,
        properties={"bootstrap.servers": kafka_bootstrap},
        domains=[("party", party), ("deposits", deposits)],
        group_prefix="ssdemo",
    )
    pool.start()
    try:
        sid, other = "session-pool-0001", "session-pool-0002"
        mine = reader(manager, sid, [])
        theirs = reader(manager, other, [])
        info = pool.open(sid, "party")
        group = info["group_id"]
        digest = "h" + hashlib.sha256(sid.encode()).hexdigest()[:16]
        assert group.startswith(f"ssdemo-party-{digest}-") and sid not in group
        prefix, domain, *_ = group.split("-", 2)
        assert (prefix, domain) == ("ssdemo", "party")
        assert len(group.rsplit("-", 1)[1]) == 8  # <uuid8>
        assert pool.open(sid, "party")["group_id"] == group  # one consumer per (session, domain)
        pool.open(sid, "deposits")
        pool.open(other, "party")
        for s, d in ((sid, "party"), (sid, "deposits"), (other, "party")):
            assert pool.wait_assigned(s, d, 20)
        health = pool.health()
        assert (health["active_sessions"], health["total_consumers"]) == (2, 3)

        producer.produce(party, json.dumps({"party": 1}))
        producer.produce(deposits, json.dumps({"amount": 5}))
        producer.flush(10)
        got = mine.wait_events(2)
        assert sorted(f.event for f in got) == ["deposits", "party"]
        assert [f.event for f in theirs.wait_events(1)] == ["party"]
        # Each session's consumer is its own group on the broker.
        described = kafka_admin.describe_group(group)
        assert described is not None and described["state"] == "Stable"
        assert len(described["members"]) == 1

        assert pool.close(sid, "party") is True
        assert pool.close(sid, "party") is False
        assert pool.wait_closed(20)
        assert kafka_admin.describe_group(group) is None  # left, then deleted
        assert group not in {g["group"] for g in kafka_admin.list_groups()}
        assert pool.close_session(sid) == 1
        assert pool.wait_closed(20)
        health = pool.health()
        assert health["total_consumers"] == 1 and health["groups_deleted"] == 2
    finally:
        pool.stop()
    assert pool.health()["total_consumers"] == 0
    assert not [g for g in kafka_admin.list_groups() if g["group"].startswith("ssdemo-")]


def test_session_pool_idle_cleanup_closes_only_idle_consumers(
    hub: ss.Hub,
    manager: ss.ConnectionManager,
    kafka_admin: ss.KafkaAdmin,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    topic = new_topic()
    pool = ss.KafkaSessionPool(
        hub,
        properties={"bootstrap.servers": kafka_bootstrap},
        domains=[("party", topic)],
        idle_timeout=1.0,
        sweep_interval=0.3,
        max_consumers=2,
    )
    pool.start()
    try:
        active, idle = "session-active-01", "session-idle-001"
        connection = manager.open(active, notifier=ss.Notifier())  # keeps its channel busy
        groups = {s: pool.open(s, "party")["group_id"] for s in (active, idle)}
        with pytest.raises(ss.KafkaPoolFullError) as full:
            pool.open("session-third-001", "party")
        assert full.value.limit == 2
        assert pool.health()["status"] == "degraded"  # full
        for s in groups:
            assert pool.wait_assigned(s, "party", 20)
        wait_for(lambda: pool.health()["idle_closed"] == 1, timeout=10, what="the idle sweep")
        assert pool.wait_closed(20)
        remaining = [c["session_id"] for c in pool.health()["consumers"]]
        assert remaining == [active]
        assert kafka_admin.describe_group(groups[idle]) is None
        assert kafka_admin.describe_group(groups[active]) is not None
        connection.close()
        wait_for(lambda: pool.health()["total_consumers"] == 0, timeout=10, what="second sweep")
        assert pool.wait_closed(20)
        assert kafka_admin.describe_group(groups[active]) is None
    finally:
        pool.stop()


def test_sink_reports_deliveries(producer: ss.KafkaSink, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=1)
    for n in range(20):
        producer.produce(topic, f"v{n}", key=b"k", headers=[("h", "1")])
    assert producer.flush(10) == 0
    health = producer.health()
    assert health["delivered"] >= 20 and health["failed"] == 0
    assert health["status"] == "healthy"
    with pytest.raises(ss.InvalidArgumentError):
        producer.produce("", "x")


def test_records_that_are_not_utf8_are_counted_and_never_published(
    start_source: Callable[..., ss.KafkaSource],
    manager: ss.ConnectionManager,
    producer: ss.KafkaSink,
    new_topic: Callable[..., str],
) -> None:
    topic = new_topic(partitions=1)
    source = start_source([topic], channel="{topic}")
    sse = reader(manager, "session-utf8-sse1", [topic])
    ws = manager.open(
        "session-utf8-ws01", notifier=ss.Notifier(), channels=[topic], framing="websocket"
    )
    records: list[bytes | str] = [
        b"binary \xff\xfe",
        "caf\u00e9",
        b'{"text": "\xc3("}',  # JSON, but a string in it is not UTF-8
        '{"n": 1}',
        b"\xed\xa0\x80",  # an encoded surrogate
    ]
    for value in records:
        producer.produce(topic, value)
    assert producer.flush(10) == 0
    wait_for(lambda: source.health()["received"] == len(records), what="all records")

    health = source.health()
    assert health["skipped"]["invalid_utf8"] == 3
    assert health["published"] == 2
    assert [f.data for f in sse.wait_events(2)] == ["caf\u00e9", '{"n": 1}']
    # The WebSocket framing of what was published decodes as UTF-8 text.
    frames = ws.take()[0].decode()
    assert [m["data"] for m in json.loads(frames)] == ["caf\u00e9", {"n": 1}]
    notes = [n for n in source.take_log_notes() if n[1] == "skip.invalid_utf8"]
    assert len(notes) == 1, notes  # noted once, then counted
    assert "(invalid_utf8)" in notes[0][2] and "byte offset 7" in notes[0][2]
    # More of them are counted, not noted one by one.
    producer.produce(topic, b"\x80")
    producer.flush(10)
    wait_for(lambda: source.health()["skipped"]["invalid_utf8"] == 4, what="the fourth record")
    assert not [n for n in source.take_log_notes() if n[1] == "skip.invalid_utf8"]
    ws.close()


def test_session_pool_counts_records_that_are_not_utf8(
    hub: ss.Hub,
    manager: ss.ConnectionManager,
    producer: ss.KafkaSink,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    party = new_topic("party", partitions=1)
    pool = ss.KafkaSessionPool(
        hub, properties={"bootstrap.servers": kafka_bootstrap}, domains=[("party", party)]
    )
    pool.start()
    try:
        sid = "session-pool-utf8"
        mine = reader(manager, sid, [])
        pool.open(sid, "party")
        assert pool.wait_assigned(sid, "party", 20)
        producer.produce(party, b"\xff")
        producer.produce(party, json.dumps({"party": 1}))
        producer.flush(10)
        assert [json.loads(f.data) for f in mine.wait_events(1)] == [{"party": 1}]
        wait_for(lambda: pool.health()["skipped"]["invalid_utf8"] == 1, what="the skipped record")
        notes = [n for n in pool.take_log_notes() if n[1] == "skip.invalid_utf8"]
        assert len(notes) == 1 and "byte offset 0" in notes[0][2]
    finally:
        pool.stop()
