"""Connection churn: thousands of streams opened and dropped leave nothing behind.

2,000 connections at a time (SSE and WebSocket, some closed politely, some cut off, some
gone before the server answered; WebSocket ones subscribe to one more channel) churn for
30 s and at least 10,000 completed connections; afterwards the server's file
descriptors, threads and connection counts are back to their baseline and its RSS has not
grown beyond a bound. The baseline is taken after a short warm-up round at the same
concurrency: the allocator keeps the pages of its first high-water mark, which is not a
leak; what a leak would show is growth with the number of connections served since. The
figures are printed (``-s``) and attached to the report.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import time

import pytest

from .support import ServerProcess, eventually

CONCURRENT = 2_000
DURATION = 30.0
CYCLES = 10_000  # connect, subscribe, disconnect: completed ones
WARM_UP = 5.0
RSS_GROWTH_BOUND = 16 * 1024 * 1024  # a leak of 1 KiB per connection would show as ~15 MiB


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _request(path: str, extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n").encode()


def _ws_request() -> bytes:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    return _request(
        "/stream/ws?channel=churn",
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
    )


def _subscribe_frame(channel: str) -> bytes:
    # A masked text frame; the zero mask leaves the payload as it is.
    payload = json.dumps({"type": "subscribe", "channels": [channel]}).encode()
    assert len(payload) < 126
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload


async def _one(port: int, rng: random.Random, stats: dict[str, int]) -> None:
    kind = rng.choice(("sse", "sse", "sse", "ws", "early"))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        stats["connect_errors"] += 1
        return
    try:
        if kind == "ws":
            writer.write(_ws_request())
        else:
            writer.write(_request("/stream/sse?channel=churn"))
        await writer.drain()
        if kind == "early":
            # Gone before the server answered (or while the handoff runs).
            stats["early"] += 1
            return
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
        status = head.split(b" ", 2)[1]
        if status not in (b"200", b"101"):
            stats[f"status_{status.decode()}"] = stats.get(f"status_{status.decode()}", 0) + 1
            return
        await asyncio.wait_for(reader.read(256), 10.0)  # the welcome
        if kind == "ws":
            writer.write(_subscribe_frame(f"churn-{rng.randrange(100)}"))
            await writer.drain()
        stats[kind] += 1
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        if rng.random() < 0.5:
            # Cut off without a goodbye: RST instead of FIN.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        stats["errors"] += 1
    finally:
        writer.close()


async def _churn(port: int, duration: float, cycles: int = 0) -> dict[str, int]:
    """Churn for ``duration`` seconds and at least ``cycles`` completed connections (at most
    four times as long)."""
    rng = random.Random(2026)
    stats = {"sse": 0, "ws": 0, "early": 0, "errors": 0, "connect_errors": 0}
    running: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    while time.monotonic() - started < duration or (
        stats["sse"] + stats["ws"] < cycles and time.monotonic() - started < 4 * duration
    ):
        while len(running) < CONCURRENT:
            task = asyncio.create_task(_one(port, rng, stats))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.sleep(0.01)
    await asyncio.gather(*running)
    return stats


@pytest.mark.asyncio
async def test_churn_returns_fds_threads_and_memory_to_baseline(
    start_server, delivery: str, record_property
) -> None:
    server: ServerProcess = start_server(
        SESSIONSTREAM_MAX_CONNECTIONS="10000",
        SESSIONSTREAM_MAX_PER_IP="10000",
        # Hundreds of new connections a second from one address is the point here.
        SESSIONSTREAM_CONNECT_RATE_PER_IP="0",
        SESSIONSTREAM_HISTORY_MAX_EVENTS="16",
        # Every churned client is a new browser session with its own private channel; the
        # hub drops idle channels once their history aged out, here within a second or two.
        SESSIONSTREAM_HISTORY_MAX_AGE="2",
    )
    pid = server.pid
    fds_at_start = server.open_fds()

    def settled(bound: int) -> int:
        # The descriptor count once nothing is open and idle channels are gone (0 before).
        stream = server.health()["stream"]
        if stream["active_connections"] or stream["channels"] > 1:
            return 0
        count = server.open_fds()
        return count if count <= bound else 0

    await _churn(server.port, WARM_UP)
    fds = await eventually(
        lambda: settled(fds_at_start), timeout=20, what="warm-up connections released"
    )
    threads, rss = _threads(pid), _rss(pid)

    stats = await _churn(server.port, DURATION, CYCLES)
    after_fds = await eventually(
        lambda: settled(fds), timeout=20, what="every churned connection released"
    )
    after_threads, after_rss = _threads(pid), _rss(pid)
    figures = {
        "delivery": delivery,
        **stats,
        "fds_at_start": fds_at_start,
        "fds_before": fds,
        "fds_after": after_fds,
        "threads_before": threads,
        "threads_after": after_threads,
        "rss_before_mib": round(rss / 2**20, 1),
        "rss_after_mib": round(after_rss / 2**20, 1),
    }
    print("churn:", figures)
    for key, value in figures.items():
        record_property(key, value)
    assert stats["sse"] + stats["ws"] >= CYCLES, stats
    assert after_fds <= fds
    assert after_threads == threads
    assert after_rss - rss < RSS_GROWTH_BOUND, figures
    health = server.health()
    assert health["delivery"]["open"][delivery] == {"sse": 0, "websocket": 0}
    assert health["websocket_metrics"]["unique_browser_sessions"] == 0, health
    assert health["stream"]["channels"] <= 1, health["stream"]
