"""Kafka through the FastAPI app: real uvicorn processes, real broker, real clients."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable

import httpx
import pytest

import sessionstream as ss
from tests.integration.support import (
    ServerProcess,
    SSEClient,
    SSEEvent,
    WSClient,
    eventually,
    session_id,
)

from .conftest import kafka_sh

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

StartServer = Callable[..., ServerProcess]


async def events(stream: SSEClient, count: int, timeout: float = 15.0) -> list[SSEEvent]:
    """The next ``count`` events that carry data (id-only position frames are skipped),
    within ``timeout`` in all."""
    deadline = time.monotonic() + timeout
    out: list[SSEEvent] = []
    while len(out) < count:
        event = await stream.next(max(0.01, deadline - time.monotonic()))
        if event.data or event.event != "message":
            out.append(event)
    return out


async def kafka_health(server: ServerProcess) -> dict:
    async with httpx.AsyncClient(timeout=10.0) as client:
        return (await client.get(server.url + "/kafka/health")).json()


async def app_health(server: ServerProcess) -> dict:
    async with httpx.AsyncClient(timeout=10.0) as client:
        return (await client.get(server.url + "/health")).json()


def produce(sink: ss.KafkaSink, topic: str, key: str | None, *items: dict) -> None:
    for item in items:
        sink.produce(topic, json.dumps(item), key=key)
    assert sink.flush(10) == 0


async def published(server: ServerProcess, count: int) -> None:
    async def check() -> bool:
        return (await kafka_health(server))["source"]["published"] >= count

    await eventually(check, timeout=15, what=f"{count} records published")


async def test_kafka_to_sse_and_isolation_by_record_key(
    kafka_server: StartServer, producer: ss.KafkaSink, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    server = kafka_server(
        SESSIONSTREAM_KAFKA_TOPICS=topic, SESSIONSTREAM_KAFKA_CHANNEL="{topic}:{key}"
    )
    alice, bob = f"{topic}:alice", f"{topic}:bob"
    async with (
        SSEClient(server.url, [alice], session_id=session_id("alice")) as a,
        SSEClient(server.url, [bob], session_id=session_id("bob")) as b,
    ):
        produce(producer, topic, "alice", {"to": "alice", "n": 1})
        produce(producer, topic, "bob", {"to": "bob", "n": 1})
        produce(producer, topic, "alice", {"to": "alice", "n": 2}, {"to": "alice", "end": True})
        produce(producer, topic, "bob", {"end": True, "to": "bob"})
        got_a = [e.json() for e in await events(a, 3, 15)]
        got_b = [e.json() for e in await events(b, 2, 15)]
    assert got_a == [{"to": "alice", "n": 1}, {"to": "alice", "n": 2}, {"to": "alice", "end": True}]
    assert got_b == [{"to": "bob", "n": 1}, {"end": True, "to": "bob"}]
    health = await kafka_health(server)
    assert health["status"] == "healthy"
    source = health["source"]
    assert source["mode"] == "node" and source["consumers"] == 1
    assert {a["partition"] for a in source["assignments"]} == {0, 1, 2}

    async def caught_up() -> bool:
        assignments = (await kafka_health(server))["source"]["assignments"]
        # A new topic: the high watermarks add up to the five records produced.
        return (
            all(a["lag"] == 0 for a in assignments)
            and sum(a["high_watermark"] for a in assignments) == 5
        )

    await eventually(caught_up, timeout=10, what="lag 0 on every partition")


async def test_kafka_to_websocket(
    kafka_server: StartServer, producer: ss.KafkaSink, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    server = kafka_server(
        SESSIONSTREAM_KAFKA_TOPICS=topic,
        SESSIONSTREAM_KAFKA_CHANNEL="{topic}",
        SESSIONSTREAM_KAFKA_EVENT_TYPE="{header:type}",
    )
    async with await WSClient.open(server.ws_url, channels=[topic]) as ws:
        producer.produce(topic, json.dumps({"amount": 10}), key="a", headers=[("type", "deposit")])
        producer.produce(topic, "plain text", key="a", headers=[("type", "note")])
        assert producer.flush(10) == 0
        first = await ws.next_event("deposit", timeout=15)
        second = await ws.next_event("note", timeout=15)
    assert first["data"] == {"amount": 10} and first["channel"] == topic
    assert second["data"] == "plain text"
    assert first["id"] != second["id"]


async def test_resume_older_than_the_ring_seeks_kafka_and_beyond_the_bound_gets_a_gap(
    kafka_server: StartServer, producer: ss.KafkaSink, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    server = kafka_server(
        SESSIONSTREAM_KAFKA_TOPICS=topic,
        SESSIONSTREAM_KAFKA_CHANNEL="{key}",
        SESSIONSTREAM_HISTORY_MAX_EVENTS="3",
        SESSIONSTREAM_KAFKA_REPLAY_MAX_EVENTS="10",
    )
    sid = session_id("resumer")
    async with SSEClient(server.url, ["near", "far"], session_id=sid) as stream:
        produce(producer, topic, "near", {"n": 0})
        near_first = (await events(stream, 1))[0]
        produce(producer, topic, "far", {"n": 0})
        far_first = (await events(stream, 1))[0]
        seen = [near_first, far_first]
    # Disconnected: more than the ring holds arrives while away.
    produce(producer, topic, "near", *({"n": n} for n in range(1, 9)))
    produce(producer, topic, "far", *({"n": n} for n in range(1, 16)))
    await published(server, 2 + 8 + 15)

    async with SSEClient(
        server.url, ["near"], session_id=sid, last_event_id=near_first.id
    ) as resumed:
        assert resumed.welcome is not None and resumed.welcome["resume"] == "exact"
        missed = await events(resumed, 8, 15)
        assert [e.json()["n"] for e in missed] == list(range(1, 9))
        ids = [e.id for e in missed]
        assert len(set(ids)) == 8 and near_first.id not in ids
    async with SSEClient(server.url, ["far"], session_id=sid, last_event_id=far_first.id) as far:
        assert far.welcome is not None and far.welcome["resume"] == "gap"
        gap = (await events(far, 1))[0]
        assert gap.event == "gap"
        assert gap.json()["channels"] == ["far"]
        assert [e.json()["n"] for e in await events(far, 3, 15)] == [13, 14, 15]
    replay = (await kafka_health(server))["source"]["replay"]
    assert replay["replays"] >= 1 and replay["replayed_events"] >= 5
    assert seen[0].id != seen[1].id


async def test_two_app_processes_are_two_nodes_and_both_deliver(
    kafka_server: StartServer, producer: ss.KafkaSink, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    env = {"SESSIONSTREAM_KAFKA_TOPICS": topic}
    node_a, node_b = kafka_server(**env), kafka_server(**env)
    assert node_a.port != node_b.port
    groups = {(await kafka_health(n))["source"]["group_id"] for n in (node_a, node_b)}
    assert len(groups) == 2  # a group per node: each sees every record
    async with (
        SSEClient(node_a.url, [topic]) as on_a,
        SSEClient(node_b.url, [topic]) as on_b,
    ):
        # Produced through node A's own producer route.
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.post(
                node_a.url + "/test/produce", json={"topic": topic, "data": {"hello": "nodes"}}
            )
            assert response.json() == {"produced": 1, "in_flight": 0}
        (got_a,), (got_b,) = await asyncio.gather(events(on_a, 1), events(on_b, 1))
    assert got_a.json() == got_b.json() == {"hello": "nodes"}


async def test_session_mode_over_http_connect_stream_disconnect(
    kafka_server: StartServer,
    producer: ss.KafkaSink,
    kafka_admin: ss.KafkaAdmin,
    new_topic: Callable[..., str],
) -> None:
    party = new_topic("party")
    server = kafka_server(
        SESSIONSTREAM_KAFKA_MODE="session",
        SESSIONSTREAM_KAFKA_DOMAINS=f"party:{party}",
        SESSIONSTREAM_KAFKA_GROUP_PREFIX="headless",
    )
    sid = session_id("seed000")
    headers = {"X-Session-ID": sid}
    async with httpx.AsyncClient(base_url=server.url, timeout=15, headers=headers) as client:
        refused = await client.post("/kafka/events/secrets/connect")
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_domain"
        connected_at = time.monotonic()
        opened = (await client.post("/kafka/events/party/connect")).json()
        assert opened["channel"] == f"session:{sid}" and opened["event"] == "party"
        async with SSEClient(server.url, [], session_id=sid) as stream:

            async def assigned() -> bool:
                health = await kafka_health(server)
                consumers = health["session_pool"]["sessions"]
                return any(v["timestamps"]["party"]["assigned"] for v in consumers.values())

            await eventually(assigned, timeout=20, what="session consumer assignment")
            produce(producer, party, None, {"guests": 3})
            event = await stream.next_of("party", timeout=15)
            assert event.json() == {"guests": 3}
        health = await kafka_health(server)
        pool = health["session_pool"]
        assert pool["active_sessions"] == 1 and pool["total_consumers"] == 1
        (view,) = pool["sessions"].values()
        assert view["domains"] == ["party"] and view["consumer_count"] == 1
        age = view["timestamps"]["party"]["age_seconds"]
        assert 0 <= age <= time.monotonic() - connected_at + 0.01
        # The group names the session by its digest (as /health does), never by its id,
        # which is a bearer secret and would reach broker and client logs.
        digest = "h" + hashlib.sha256(sid.encode()).hexdigest()[:16]
        assert not [g for g in kafka_admin.list_groups() if sid in g["group"]]
        groups = [g["group"] for g in kafka_admin.list_groups() if digest in g["group"]]
        assert len(groups) == 1 and groups[0].startswith(f"headless-party-{digest}-")

        closed = (await client.post("/kafka/events/party/disconnect")).json()
        assert closed == {"domain": "party", "closed": True}

        async def gone() -> bool:
            return not [g for g in kafka_admin.list_groups() if digest in g["group"]]

        await eventually(gone, timeout=20, what="the session's group to leave and be deleted")
        assert (await client.post("/kafka/cleanup")).json() == {"closed_consumers": 0}


async def test_session_pool_detail_is_hidden_from_anonymous_health(
    kafka_server: StartServer, new_topic: Callable[..., str]
) -> None:
    party = new_topic("party")
    server = kafka_server(
        SESSIONSTREAM_KAFKA_MODE="session",
        SESSIONSTREAM_KAFKA_DOMAINS=f"party:{party}",
        SESSIONSTREAM_HEALTH_SESSIONS="authorized",
    )
    sid = session_id("hidden")
    async with httpx.AsyncClient(
        base_url=server.url, timeout=15, headers={"X-Session-ID": sid}
    ) as client:
        assert (await client.post("/kafka/events/party/connect")).status_code == 200
        for doc in ((await kafka_health(server)), (await app_health(server))["kafka"]):
            pool = doc["session_pool"]
            # Counts for anyone; no per-session entry, no group id naming the session.
            assert pool["active_sessions"] == 1 and pool["total_consumers"] == 1
            assert pool["sessions"] == {}
            assert sid not in json.dumps(doc)
        assert (await client.post("/kafka/events/party/disconnect")).json()["closed"] is True


async def test_broker_restart_while_streaming_recovers_without_loss_or_duplicates(
    kafka_server: StartServer, producer: ss.KafkaSink, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    server = kafka_server(SESSIONSTREAM_KAFKA_TOPICS=topic, SESSIONSTREAM_KAFKA_CHANNEL="{topic}")
    async with SSEClient(server.url, [topic], timeout=60) as steady:
        async with SSEClient(server.url, [topic]) as leaver:
            produce(producer, topic, "k", *({"n": n} for n in range(5)))
            before = await events(leaver, 5, 15)
        last_id = before[-1].id

        stopped = await asyncio.to_thread(kafka_sh, "stop")
        assert stopped.returncode == 0, stopped.stderr

        async def degraded() -> bool:
            health = await kafka_health(server)
            return health["status"] == "degraded" and "broker unreachable" in str(health["reasons"])

        await eventually(degraded, timeout=30, what="health to report the broker down")
        # The app's one /health carries Kafka's section and its degraded status.
        overall = await app_health(server)
        assert overall["status"] == "degraded"
        assert any(r.startswith("kafka: ") for r in overall["reasons"]), overall["reasons"]
        assert overall["kafka"]["status"] == "degraded"
        # Produced while the broker is down: queued by the producer, delivered later.
        for n in range(5, 10):
            producer.produce(topic, json.dumps({"n": n}), key="k")
        started = await asyncio.to_thread(kafka_sh, "start", timeout=240)
        assert started.returncode == 0, started.stderr
        assert await asyncio.to_thread(producer.flush, 60) == 0
        produce(producer, topic, "k", *({"n": n} for n in range(10, 12)))

        got = [e.json()["n"] for e in await events(steady, 12, 60)]
        assert got == list(range(12))  # every record once, in order

        async with SSEClient(server.url, [topic], last_event_id=last_id) as resumed:
            assert resumed.welcome is not None and resumed.welcome["resume"] == "exact"
            again = [e.json()["n"] for e in await events(resumed, 7, 15)]
            assert again == list(range(5, 12))

        async def healthy() -> bool:
            return (await kafka_health(server))["status"] == "healthy"

        await eventually(healthy, timeout=30, what="health to recover")
        assert (await app_health(server))["kafka"]["status"] == "healthy"
        with pytest.raises(asyncio.TimeoutError):
            await events(steady, 1, 1.0)  # and nothing twice


async def test_broker_down_at_start_serves_degraded_then_streams_when_it_is_back(
    kafka_server: StartServer, producer: ss.KafkaSink, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    stopped = await asyncio.to_thread(kafka_sh, "stop")
    assert stopped.returncode == 0, stopped.stderr
    try:
        # The server does not wait for a broker that is not there; it starts degraded.
        server = kafka_server(
            SESSIONSTREAM_KAFKA_TOPICS=topic,
            SESSIONSTREAM_KAFKA_CHANNEL="{topic}",
            SESSIONSTREAM_KAFKA_READY_TIMEOUT="2",
        )

        async def degraded() -> bool:
            health = await app_health(server)
            return health["status"] == "degraded" and any(
                r.startswith("kafka: ") for r in health["reasons"]
            )

        await eventually(degraded, timeout=30, what="health to report the broker down")
        async with SSEClient(server.url, [topic], timeout=90) as stream:
            assert stream.status_code == 200  # streams open while the broker is down
            started = await asyncio.to_thread(kafka_sh, "start", timeout=240)
            assert started.returncode == 0, started.stderr
            produce(producer, topic, "k", *({"n": n} for n in range(3)))
            got = [e.json()["n"] for e in await events(stream, 3, 90)]
            assert got == [0, 1, 2]

        async def healthy() -> bool:
            return (await app_health(server))["status"] == "healthy"

        await eventually(healthy, timeout=30, what="health to recover")
    finally:
        if kafka_sh("status").returncode != 0:
            kafka_sh("start", timeout=240)
