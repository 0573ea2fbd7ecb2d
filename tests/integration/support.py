"""Real servers and real clients for the integration tests.

``ServerProcess`` runs uvicorn in a subprocess on a loopback socket it inherits (no port
race) and always stops it (``sessionstream.testing.StreamServer`` with the protocol
classes named). ``SSEClient`` reads a stream with httpx and parses it (comments
included, which EventSource hides); ``WSClient`` speaks the JSON protocol with
``websockets``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sessionstream.testing.server import FD, StreamServer

ROOT = Path(__file__).resolve().parents[2]


# How the server is started for each delivery mode: "native" loads the handoff protocol
# classes (streams are handed to the native engine), "python" is plain uvicorn (the routes
# fall back to Python delivery).
SERVER_ARGS = {
    "native": [
        "--http",
        "sessionstream.server:HttpToolsHandoffProtocol",
        "--ws",
        "sessionstream.server:WebSocketsSansIOHandoffProtocol",
    ],
    "python": [],
}


def delivery_modes() -> list[str]:
    """Both modes, or the one named by SESSIONSTREAM_TEST_DELIVERY."""
    only = os.environ.get("SESSIONSTREAM_TEST_DELIVERY")
    return [only] if only else list(SERVER_ARGS)


class ServerProcess(StreamServer):
    """``python -m uvicorn <app>`` on 127.0.0.1 with extra environment variables;
    ``stop()`` ends it for good (the port is released)."""

    def __init__(
        self,
        app: str,
        env: dict[str, str] | None = None,
        *,
        delivery: str = "python",
        server_args: list[str] | None = None,
        launcher: tuple[str, ...] = ("uvicorn",),
    ) -> None:
        """``launcher``: what ``python -m`` runs (``("sessionstream", "serve")`` for the CLI)."""
        self.server_args = [*SERVER_ARGS[delivery], *(server_args or [])]
        command = [sys.executable, "-m", *launcher, app, "--fd", FD, "--log-level", "warning"]
        command += ["--timeout-graceful-shutdown", "15", *self.server_args]
        super().__init__(
            app,
            delivery="native" if delivery == "native" else "python",
            env=env,
            command=command,
            cwd=ROOT,
            graceful_timeout=10,
        )

    def stop(self, timeout: float | None = None) -> None:
        self.close()

    def json_lines(self) -> list[dict[str, Any]]:
        """The server's JSON log lines (``log_format="json"``) so far, parsed: a line that
        starts with ``{`` and does not parse fails the test."""
        lines = [line for line in self.log().splitlines() if line.startswith("{")]
        return [json.loads(line) for line in lines]


async def get_health(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(base_url + "/health")
        return response.json()


async def publish(
    server: ServerProcess, channel: str, data: object = None, **kw: object
) -> list[str]:
    """Publish through the stream test app's ``/test/publish``; returns the event ids."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.post(
            server.url + "/test/publish", json={"channel": channel, "data": data, **kw}
        )
        response.raise_for_status()
        return response.json()["ids"]


async def subscribers(server: ServerProcess, channel: str) -> int:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(server.url + "/test/subscribers", params={"channel": channel})
        return response.json()["count"]


async def eventually(
    check: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Await ``check()`` (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}; last={last!r}")


def health_key(sid: str) -> str:
    """How /health names a session by default (a digest, never the id itself)."""
    return "h:" + hashlib.sha256(sid.encode()).hexdigest()[:16]


def session_id(tag: str) -> str:
    """A valid, unique session id that says which test made it."""
    return f"{tag}-{os.urandom(6).hex()}"[:128]


# -- SSE -------------------------------------------------------------------


@dataclass
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comment: str | None = None
    anchor: bool = False
    """An id-only block: not an event, it only moves the last event id."""

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SSEClient:
    """One SSE stream read with httpx; use ``async with SSEClient(...) as stream``."""

    base_url: str
    channels: Iterable[str] = ()
    session_id: str | None = None
    """Sent as ``X-Session-ID`` (as ``?session_id=`` with ``session_query``)."""
    last_event_id: str | None = None
    last_event_id_query: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/stream/sse"
    session_query: bool = False
    timeout: float = 10.0

    status_code: int = 0
    response_headers: httpx.Headers | None = None
    events: list[SSEEvent] = field(default_factory=list)
    welcome: dict[str, Any] | None = None
    welcome_id: str | None = None
    """The welcome event's own id (the stream's position on a live stream)."""
    last_event_id_seen: str | None = None
    """What a browser's EventSource would send as Last-Event-ID on its next reconnect."""

    async def __aenter__(self) -> SSEClient:
        params: list[tuple[str, str]] = [("channel", c) for c in self.channels]
        headers = dict(self.headers)
        if self.session_id and self.session_query:
            params.append(("session_id", self.session_id))
        elif self.session_id:
            headers["X-Session-ID"] = self.session_id
        if self.last_event_id_query:
            params.append(("last_event_id", self.last_event_id_query))
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, read=None))
        self._cm = self._client.stream(
            "GET", self.base_url + self.path, params=params, headers=headers
        )
        self.response = await self._cm.__aenter__()
        self.status_code = self.response.status_code
        self.response_headers = self.response.headers
        self._iter = self._parse(self.response.aiter_lines())
        if self.status_code == 200:
            first = await self.next(include_comments=False)
            assert first.event == "welcome", first
            self.welcome = first.json()
            self.welcome_id = first.id
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if getattr(self, "_cm", None) is not None:
            try:
                await self._cm.__aexit__(None, None, None)
            finally:
                self._cm = None
                await self._client.aclose()

    async def body_json(self) -> Any:
        await self.response.aread()
        return self.response.json()

    @staticmethod
    async def _parse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
        # As the EventSource spec says: a block without data is not an event, but its
        # id field still moves the last event id.
        current = SSEEvent()
        has_data = False
        async for line in lines:
            if line == "":
                if has_data:
                    current.data = current.data[:-1]
                    yield current
                elif current.id is not None:
                    yield SSEEvent(event="", id=current.id, anchor=True)
                current = SSEEvent()
                has_data = False
                continue
            if line.startswith(":"):
                yield SSEEvent(event="", comment=line[1:].strip())
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                current.data += value + "\n"
                has_data = True
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "retry":
                current.retry = int(value)

    async def next(self, timeout: float = 5.0, *, include_comments: bool = False) -> SSEEvent:
        # One deadline for the call: skipped heartbeats must not restart the wait.
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.01, deadline - time.monotonic())
            event = await asyncio.wait_for(self._iter.__anext__(), left)
            if event.id is not None:
                self.last_event_id_seen = event.id
            if event.anchor or (event.comment is not None and not include_comments):
                continue
            self.events.append(event)
            return event

    async def next_of(self, event_name: str, timeout: float = 5.0) -> SSEEvent:
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(max(0.01, deadline - time.monotonic()))
            if event.event == event_name:
                return event

    async def collect(self, count: int, timeout: float = 5.0) -> list[SSEEvent]:
        return [await self.next(timeout) for _ in range(count)]

    async def expect_end(self, timeout: float = 5.0) -> list[SSEEvent]:
        """Read until the server ends the stream; return what arrived."""
        seen: list[SSEEvent] = []
        try:
            while True:
                seen.append(await self.next(timeout))
        except StopAsyncIteration:
            return seen


# -- WebSocket -------------------------------------------------------------


class WSClient:
    """A WebSocket stream; collects server frames (JSON arrays) into a message queue."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[list[dict[str, Any]]] = []
        self.buffer: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] | None = None

    @classmethod
    async def open(
        cls,
        base_ws_url: str,
        *,
        channels: Iterable[str] = (),
        session_id: str | None = None,
        last_event_id: str | None = None,
        headers: dict[str, str] | None = None,
        expect_welcome: bool = True,
        path: str = "/stream/ws",
        max_size: int | None = 2**24,
        session_query: bool = False,
    ) -> WSClient:
        """``session_id`` goes in the ``X-Session-ID`` header (in the URL with
        ``session_query``, for servers that opt in to it)."""
        params = [("channel", c) for c in channels]
        headers = dict(headers or {})
        if session_id and session_query:
            params.append(("session_id", session_id))
        elif session_id:
            headers["X-Session-ID"] = session_id
        if last_event_id:
            params.append(("last_event_id", last_event_id))
        query = str(httpx.QueryParams(params))
        url = base_ws_url + path + (f"?{query}" if query else "")
        connection = await connect(
            url, additional_headers=headers, max_size=max_size, open_timeout=10, ping_interval=None
        )
        client = cls(connection)
        if expect_welcome:
            welcome = await client.next(lambda m: m["type"] == "welcome")
            client.welcome = welcome
        return client

    async def __aenter__(self) -> WSClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, code: int = 1000) -> None:
        await self.connection.close(code)

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.connection.send(message if isinstance(message, str) else json.dumps(message))

    async def recv_frame(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        frame = json.loads(raw)
        assert isinstance(frame, list), f"server frames are JSON arrays, got {raw[:200]!r}"
        self.frames.append(frame)
        return frame

    async def next(
        self, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first buffered or arriving message matching ``predicate``; messages that do
        not match stay buffered for later calls."""
        deadline = time.monotonic() + timeout
        scanned = 0
        while True:
            for index in range(scanned, len(self.buffer)):
                if predicate is None or predicate(self.buffer[index]):
                    return self.buffer.pop(index)
            scanned = len(self.buffer)
            self.buffer.extend(await self.recv_frame(max(0.01, deadline - time.monotonic())))

    async def next_type(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.next(lambda m: m["type"] == kind, timeout)

    async def next_event(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.next(lambda m: m["type"] == "event" and m["event"] == event, timeout)

    async def until_closed(
        self, timeout: float = 5.0
    ) -> tuple[int | None, str, list[dict[str, Any]]]:
        """Read until the server closes; return (code, reason, messages seen meanwhile)."""
        seen: list[dict[str, Any]] = list(self.buffer)
        self.buffer.clear()
        try:
            while True:
                seen.extend(await self.recv_frame(timeout))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code if rcvd else None), (rcvd.reason if rcvd else ""), seen
