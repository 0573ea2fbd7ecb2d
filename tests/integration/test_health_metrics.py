"""``/health`` (seed 000/002/004 shapes) and ``/metrics`` (Prometheus, native counters)."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from .support import (
    ServerProcess,
    SSEClient,
    WSClient,
    eventually,
    get_health,
    health_key,
    publish,
    session_id,
)

SEED_004_KEYS = {
    "active_connections",
    "unique_browser_sessions",
    "processing_connections",
    "pending_swaps",
    "total_connections_lifetime",
    "total_errors",
    "total_messages",
    "avg_messages_per_connection",
}


def _process_age(pid: int) -> float:
    """Seconds since ``pid`` started (field 22 of /proc/<pid>/stat, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as uptime:
        since_boot = float(uptime.read().split()[0])
    return since_boot - started_ticks / os.sysconf("SC_CLK_TCK")


@pytest.mark.asyncio
async def test_health_structure(demo_server: ServerProcess) -> None:
    sid = session_id("health")
    # The hub starts after its process; the session after this line.
    process_age = _process_age(demo_server.pid)
    opened_at = time.time()
    async with SSEClient(demo_server.url, ["dashboard"], session_id=sid):
        health = await get_health(demo_server.url)
    elapsed = time.time() - opened_at
    assert health["status"] == "healthy"
    assert health["reasons"] == []
    assert health["service"] == "sessionstream"
    assert abs(health["timestamp"] - time.time()) < 60
    assert 0 < health["uptime_seconds"] <= process_age + elapsed + 1.0
    assert health["uptime_hours"] == pytest.approx(health["uptime_seconds"] / 3600, abs=1e-4)
    assert SEED_004_KEYS <= set(health["websocket_metrics"])
    stream = health["stream"]
    assert {"active_connections", "total_messages", "max_connections"} <= set(stream)  # seed 002
    assert {"published", "delivered", "dropped", "slow_consumer_disconnects"} <= set(stream)
    assert {"active_sessions", "total_connections", "sessions"} <= set(health)  # seed 000
    view = health["sessions"][health_key(sid)]
    assert view["domains"] == ["dashboard"]
    assert view["connection_count"] == 1
    assert 0 <= view["age_seconds"] <= elapsed + 0.01
    assert opened_at - 0.01 <= view["created"] <= opened_at + elapsed + 0.01
    # A session id is a bearer secret: it never appears in the health document.
    assert sid not in str(health)
    assert health["process"]["open_fds"] > 0


@pytest.mark.asyncio
async def test_metrics_are_updated_by_connections(demo_server: ServerProcess) -> None:
    before = (await get_health(demo_server.url))["websocket_metrics"]
    sids = [session_id("m1"), session_id("m2")]
    ws1 = await WSClient.open(demo_server.ws_url, session_id=sids[0])
    ws2 = await WSClient.open(demo_server.ws_url, session_id=sids[1])
    sse = await SSEClient(demo_server.url, ["dashboard"], session_id=sids[1]).__aenter__()
    try:
        during = (await get_health(demo_server.url))["websocket_metrics"]
        assert during["active_connections"] == before["active_connections"] + 3
        assert during["unique_browser_sessions"] == before["unique_browser_sessions"] + 2
        assert during["total_connections_lifetime"] == before["total_connections_lifetime"] + 3
        await ws1.send({"type": "chat", "text": "count me"})
        await ws1.next(lambda m: m.get("event") == "chat.done", timeout=10)
        health = await get_health(demo_server.url)
        after_chat = health["websocket_metrics"]
        assert after_chat["total_messages"] >= before["total_messages"] + 1
        # "connections" is the same count under names that say what it is.
        connections = health["connections"]
        assert connections["active_connections"] == after_chat["active_connections"]
        assert connections["opened_lifetime"] == after_chat["total_connections_lifetime"]
        assert connections["client_messages"] == after_chat["total_messages"]
        assert connections["errors"] == after_chat["total_errors"]
        assert (
            connections["client_messages_per_connection"]
            == after_chat["avg_messages_per_connection"]
        )
    finally:
        await ws1.close()
        await ws2.close()
        await sse.close()
    await eventually(
        lambda: _active(demo_server, before["active_connections"]), what="back to the baseline"
    )


async def _active(server: ServerProcess, expected: int) -> bool:
    return (await get_health(server.url))["websocket_metrics"]["active_connections"] == expected


@pytest.mark.asyncio
async def test_fifty_concurrent_health_requests_are_all_answered(
    demo_server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(
        base_url=demo_server.url, timeout=10.0, limits=httpx.Limits(max_connections=50)
    ) as client:
        responses = await asyncio.gather(*(client.get("/health") for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert all(r.json()["status"] in ("healthy", "degraded") for r in responses)


@pytest.mark.asyncio
async def test_prometheus_metrics_with_native_counters(stream_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client:
        first = await client.get("/metrics")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain")
        published_before = _sample(first.text, "sessionstream_events_published_total")
        channel = f"prom-{session_id('p')}"
        async with SSEClient(stream_server.url, [channel]) as stream:
            await publish(stream_server, channel, "x", count=5)
            await stream.collect(5)
            during = (await client.get("/metrics")).text
    assert _sample(during, "sessionstream_events_published_total") == published_before + 5
    assert _sample(during, "sessionstream_active_connections") >= 1
    for name in (
        "sessionstream_events_delivered_total",
        "sessionstream_connections_opened_total",
        "sessionstream_slow_consumer_disconnects_total",
        'sessionstream_rejections_total{kind="server_full"}',
        'sessionstream_resumes_total{outcome="gap"}',
    ):
        assert name in during, name


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


@pytest.mark.asyncio
async def test_health_degraded_near_the_connection_limit(start_server) -> None:
    server = start_server(
        SESSIONSTREAM_MAX_CONNECTIONS="2", SESSIONSTREAM_DEGRADED_CONNECTION_RATIO="0.5"
    )
    assert (await get_health(server.url))["status"] == "healthy"
    async with SSEClient(server.url):
        health = await get_health(server.url)
        assert health["status"] == "degraded"
        assert any("connections at 1/2" in r for r in health["reasons"])


@pytest.mark.asyncio
async def test_idle_channels_are_swept(start_server) -> None:
    server = start_server(SESSIONSTREAM_HISTORY_MAX_AGE="1")
    baseline = (await get_health(server.url))["stream"]["channels"]
    for i in range(5):
        await publish(server, f"task:{i}:progress", {"i": i})
    assert (await get_health(server.url))["stream"]["channels"] == baseline + 5
    await eventually(
        lambda: _channels(server, baseline), timeout=6, what="unsubscribed channels swept"
    )


async def _channels(server: ServerProcess, expected: int) -> bool:
    return (await get_health(server.url))["stream"]["channels"] == expected
