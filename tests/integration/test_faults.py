"""Faults: SIGTERM under load, clients killed mid-write, readers that stop reading.

Each test runs on both delivery paths. What they prove is written down in RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import sys
import time

import httpx
import pytest

from .support import ServerProcess, SSEClient, WSClient, eventually, publish, session_id

CLIENTS = 8  # per transport


async def _publish_until_refused(server: ServerProcess, channel: str) -> tuple[list[str], int]:
    """Publish batches as fast as the server answers; return the acknowledged ids in order
    and how many requests were refused (503) while the server drained."""
    acked: list[str] = []
    refused = 0
    async with httpx.AsyncClient(timeout=5.0) as client:
        n = 0
        while True:
            try:
                response = await client.post(
                    server.url + "/test/publish",
                    json={"channel": channel, "data": f"batch {n}", "count": 5},
                )
            except httpx.HTTPError:
                return acked, refused  # the server is gone
            if response.status_code == 503:
                refused += 1
                await asyncio.sleep(0.01)
                continue
            response.raise_for_status()
            acked.extend(response.json()["ids"])
            n += 1


@pytest.mark.asyncio
async def test_sigterm_under_load_delivers_every_acknowledged_event(start_server) -> None:
    server: ServerProcess = start_server(
        SESSIONSTREAM_SHUTDOWN_TIMEOUT="5", SESSIONSTREAM_MAILBOX_EVENTS="100000"
    )
    channel = "load"
    sse = [
        await SSEClient(server.url, [channel], session_id=session_id(f"t{i}")).__aenter__()
        for i in range(CLIENTS)
    ]
    ws = [await WSClient.open(server.ws_url, channels=[channel]) for _ in range(CLIENTS)]
    sse_readers = [asyncio.create_task(s.expect_end(timeout=15)) for s in sse]
    ws_readers = [asyncio.create_task(w.until_closed(timeout=15)) for w in ws]
    publisher = asyncio.create_task(_publish_until_refused(server, channel))
    await asyncio.sleep(1.5)  # under load
    server.terminate(signal.SIGTERM)
    acked, refused = await asyncio.wait_for(publisher, 30)
    assert len(acked) > 50, "the publisher got no load going"

    for reader in sse_readers:
        tail = await reader
        ids = [e.id for e in tail if e.event == "message"]
        assert ids == acked, (len(ids), len(acked), refused)
        assert (tail[-1].event, tail[-1].json()) == ("close", {"reason": "shutdown"})
    for stream in sse:
        await stream.close()
    for reader in ws_readers:
        code, reason, seen = await reader
        assert (code, reason) == (1001, "shutdown")
        assert [m["id"] for m in seen if m["type"] == "event"] == acked
    assert server.wait(timeout=15) in (0, -signal.SIGTERM)
    print(f"sigterm under load: {len(acked)} acknowledged and delivered, {refused} refused")


def _raw_connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    return sock


def _ws_upgrade(sock: socket.socket, channel: str) -> None:
    sock.sendall(
        (
            f"GET /stream/ws?channel={channel} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "closed during the upgrade"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:200]


def _masked_frame_head(opcode: int, length: int, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return struct.pack("!BB", first, 0x80 | length) + b"\x01\x02\x03\x04"
    return struct.pack("!BBH", first, 0x80 | 126, length) + b"\x01\x02\x03\x04"


@pytest.mark.asyncio
async def test_clients_killed_mid_write_leave_nothing_behind(start_server, delivery: str) -> None:
    server: ServerProcess = start_server()
    channel = f"mid-{session_id('m')}"
    async with SSEClient(server.url, [channel]) as witness:
        baseline = server.open_fds()
        killed = []
        for _ in range(5):
            # A request head cut off half way.
            sock = _raw_connect(server.port)
            sock.sendall(b"GET /stream/sse?channel=" + channel.encode() + b" HTTP/1.1\r\nHo")
            killed.append(sock)
            # A WebSocket frame announcing 1,000 bytes, killed after 10 of them.
            sock = _raw_connect(server.port)
            _ws_upgrade(sock, channel)
            sock.sendall(_masked_frame_head(0x1, 1000) + b"x" * 10)
            killed.append(sock)
            # A fragmented message: the first fragment, then gone.
            sock = _raw_connect(server.port)
            _ws_upgrade(sock, channel)
            sock.sendall(_masked_frame_head(0x1, 5, fin=False) + b"hello")
            killed.append(sock)
        await asyncio.sleep(0.2)
        for sock in killed:
            sock.close()  # RST: killed, no close handshake

        def released() -> bool:
            open_ = server.health()["delivery"]["open"][delivery]
            return open_ == {"sse": 1, "websocket": 0} and server.open_fds() <= baseline

        await eventually(released, timeout=15, what="every killed client released")
        (event_id,) = await publish(server, channel, "still here")
        assert (await witness.next_of("message")).id == event_id
    log = server.log()
    assert "Traceback" not in log, log


def _stalled_sse(port: int, channel: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /stream/sse?channel={channel} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    return sock  # and never read again, never closed


@pytest.mark.asyncio
async def test_a_reader_that_stops_reading_is_cut_off_and_others_get_everything(
    start_server, delivery: str
) -> None:
    server: ServerProcess = start_server(SESSIONSTREAM_MAILBOX_EVENTS="200")
    channel = f"stall-{session_id('s')}"
    stalled = [_stalled_sse(server.port, channel) for _ in range(3)]
    try:
        async with SSEClient(server.url, [channel]) as healthy:
            received: list[str] = []

            async def read_all(count: int) -> None:
                while len(received) < count:
                    event = await healthy.next_of("message", timeout=15)
                    received.append(str(event.id))

            acked: list[str] = []
            reader = asyncio.create_task(read_all(40 * 50))
            for _ in range(40):
                acked += await publish(server, channel, "x" * 2048, count=50)
                await asyncio.sleep(0.02)  # a steady rate the healthy reader keeps up with
            await asyncio.wait_for(reader, 30)
            assert received == acked

            def stalled_closed() -> bool:
                return server.health()["delivery"]["open"][delivery]["sse"] == 1

            await eventually(stalled_closed, timeout=15, what="the stalled readers cut off")
            assert server.health()["stream"]["slow_consumer_disconnects"] >= len(stalled)
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.asyncio
async def test_sigkill_of_a_client_process_mid_stream_is_released(start_server) -> None:
    """A whole client process killed (its sockets closed by the kernel) while events flow."""
    server: ServerProcess = start_server()
    channel = f"proc-{session_id('p')}"
    code = (
        "import socket,sys,time\n"
        "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\n"
        "s.sendall(b'GET /stream/sse?channel=" + channel + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "s.recv(100); print('open', flush=True); time.sleep(60)\n"
    )
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, str(server.port), stdout=asyncio.subprocess.PIPE
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert (await asyncio.wait_for(child.stdout.readline(), 10)).strip() == b"open"
        await eventually(
            lambda: server.health()["stream"]["active_connections"] == len(children),
            what="the child streams open",
        )
        publisher = asyncio.create_task(publish(server, channel, "y", count=200))
        for child in children:
            child.kill()  # SIGKILL: the kernel closes its sockets
        await publisher
        started = time.monotonic()
        await eventually(
            lambda: server.health()["stream"]["active_connections"] == 0,
            timeout=15,
            what="the killed clients released",
        )
        print(f"killed client processes released in {time.monotonic() - started:.2f} s")
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
            await child.wait()
