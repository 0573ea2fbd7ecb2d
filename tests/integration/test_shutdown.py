"""Graceful shutdown (seed 002) and the absence of leaks: tasks, file descriptors, threads."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from sessionstream.fastapi import StreamHub

from .stream_app import authorize, create_app
from .support import ServerProcess, SSEClient, WSClient, eventually, get_health, publish, session_id

LOG_PROBLEMS = ("Traceback", "Task was destroyed", "never awaited", "ERROR", "Exception in")


@pytest.mark.asyncio
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_clients_receive_shutdown_and_the_server_exits(start_server, sig: int) -> None:
    server: ServerProcess = start_server(SESSIONSTREAM_SHUTDOWN_TIMEOUT="3")
    sse = [
        await SSEClient(server.url, ["news"], session_id=session_id(f"s{i}")).__aenter__()
        for i in range(3)
    ]
    ws = [await WSClient.open(server.ws_url, channels=["news"]) for _ in range(3)]
    busy = await WSClient.open(server.ws_url)
    await busy.send({"type": "work", "seconds": 0.5})  # a handler in flight
    (event_id,) = await publish(server, "news", "last words")
    started = time.monotonic()
    server.terminate(sig)

    for stream in sse:
        tail = await stream.expect_end(timeout=5)
        assert [e.id for e in tail if e.id] == [event_id]  # pending events are flushed first
        assert (tail[-1].event, tail[-1].json()) == ("close", {"reason": "shutdown"})
        assert tail[-1].retry == 5000  # reconnect after Retry-After, not at once
        await stream.close()
    for client in ws:
        code, reason, seen = await client.until_closed(timeout=5)
        assert (code, reason) == (1001, "shutdown")
        assert [m["id"] for m in seen if m["type"] == "event"] == [event_id]
    code, reason, _ = await busy.until_closed(timeout=5)
    assert code == 1001

    # uvicorn re-raises the signal after its graceful shutdown: "killed by sig" is the norm.
    assert server.wait(timeout=10) in (0, -sig)
    assert time.monotonic() - started < 6
    log = server.log()
    assert not [p for p in LOG_PROBLEMS if p in log], log


@pytest.mark.asyncio
async def test_no_leaked_tasks_or_descriptors_after_many_connections(start_server) -> None:
    server: ServerProcess = start_server()
    async with SSEClient(server.url, ["warm"]):  # first connection creates the loop's eventfd
        pass
    await eventually(lambda: _settled(server), what="idle server")
    baseline = (await get_health(server.url))["process"]
    fds_before = server.open_fds()

    clients: list[Any] = []
    for i in range(20):
        clients.append(
            await SSEClient(server.url, ["load"], session_id=session_id(f"l{i}")).__aenter__()
        )
        clients.append(await WSClient.open(server.ws_url, channels=["load"]))
    await publish(server, "load", "x", count=50)
    for client in clients:
        if isinstance(client, SSEClient):
            await client.collect(50)
        else:
            while sum(1 for m in client.buffer if m["type"] == "event") < 50:
                client.buffer.extend(await client.recv_frame())
    during = (await get_health(server.url))["process"]
    assert during["open_fds"] >= baseline["open_fds"] + 40
    for client in clients:
        await client.close()

    async def back_to_baseline() -> bool:
        # Sockets of earlier requests may still be closing when a sample is taken, so a
        # sample can only be high, never low: a leak shows as staying above the baseline.
        now = (await get_health(server.url))["process"]
        return (
            now["open_fds"] <= baseline["open_fds"]
            and now["asyncio_tasks"] <= baseline["asyncio_tasks"]
            and server.open_fds() <= fds_before
        )

    await eventually(back_to_baseline, timeout=5, what="fds and tasks back to the baseline")


async def _settled(server: ServerProcess) -> bool:
    health = await get_health(server.url)
    return health["websocket_metrics"]["active_connections"] == 0


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _native_threads() -> int:
    # Threads of the process that Python did not start (executor threads of earlier
    # tests' event loops come and go and are not ours to count).
    return len(os.listdir("/proc/self/task")) - threading.active_count()


class ThreadedServer:
    """uvicorn in a thread of the test process, so its leaks would be ours to count."""

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(hub), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.leftover: list[str] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="uvicorn-test")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:

            async def main() -> None:
                await self.server.serve(sockets=[self.sock])
                current = asyncio.current_task()
                self.leftover = [repr(t) for t in asyncio.all_tasks() if t is not current]

            loop.run_until_complete(main())
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            loop.close()

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("threaded server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        # What SIGTERM does under uvicorn in the main thread: drain the streams, then exit.
        self.hub.request_shutdown()
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.mark.asyncio
async def test_in_process_shutdown_leaves_nothing_behind() -> None:
    fds_before = _fds()
    threads_before = _native_threads()
    hub = StreamHub(authorize=authorize)
    server = ThreadedServer(hub).start()
    try:
        sse = await SSEClient(server.url, ["news"]).__aenter__()
        ws = await WSClient.open(f"ws://127.0.0.1:{server.port}", channels=["news"])
        hub.request_shutdown()
        tail = await sse.expect_end()
        assert tail[-1].json() == {"reason": "shutdown"}
        assert (await ws.until_closed())[:2] == (1001, "shutdown")
        async with httpx.AsyncClient(timeout=5.0) as client:
            refused = await client.get(server.url + "/stream/sse")
            assert refused.status_code == 503
            assert refused.json()["error"] == "shutting_down"
            assert "retry-after" in refused.headers
            assert (await client.get(server.url + "/health")).json()["status"] == "shutting_down"
        await sse.close()
    finally:
        server.stop()
    assert not server.thread.is_alive()
    assert server.error is None
    assert server.leftover == []
    assert hub.state == "stopped"
    assert _fds() - fds_before == set()  # eventfd, sockets: all closed
    # The session store's sweeper is gone too. (A joined Python thread may linger in
    # /proc for a moment after join() returns, hence the polling.)
    await eventually(lambda: _native_threads() <= threads_before, timeout=2, what="threads")
