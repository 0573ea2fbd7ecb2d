"""Lightweight browser sessions: SSE and WebSocket clients that each carry one session id.

A ``SessionClient`` names its session with the ``X-Session-ID`` header on every request
(never the ``session_id`` query parameter, which servers refuse by default). Its streams
read in a background thread and collect what arrives in ``events``, so a synchronous test
can publish, then ``wait_for`` what it expects. ``drop()`` cuts a stream as a network
would; ``resume()`` reconnects with the last event id the stream saw, as ``EventSource``
does.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

SESSION_HEADER = "X-Session-ID"
_S = TypeVar("_S", bound="_Stream")


@dataclass(frozen=True)
class StreamEvent:
    """One event as a client received it; ``data`` is parsed JSON when it is JSON."""

    event: str
    data: Any
    id: str | None = None
    channel: str | None = None

    def __repr__(self) -> str:
        return f"<{self.event} id={self.id} data={self.data!r}>"


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, str, str | None]]:
    """``(event, data, id)`` per block, as the EventSource standard reads them: a block
    without ``data`` is not an event but its ``id`` still counts (``event`` is ``""``)."""
    event, event_id, has_data = "message", None, False
    data: list[str] = []
    for line in lines:
        if line == "":
            if has_data:
                yield event, "\n".join(data), event_id
            elif event_id is not None:
                yield "", "", event_id
            event, data, event_id, has_data = "message", [], None, False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
            has_data = True
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value


class _Stream:
    """What SSE and WebSocket streams share: opening (the transport's ``_connect``, then
    a reader thread until the welcome), the collected events and waiting on them."""

    _shutdown_on_close = False

    def __init__(
        self,
        session: SessionClient,
        channels: tuple[str, ...],
        *,
        last_event_id: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.session = session
        self.channels = channels
        self.resumed_from = last_event_id
        self.events: list[StreamEvent] = []
        self.welcome: dict[str, Any] | None = None
        self.last_event_id: str | None = None
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self._changed = threading.Condition()
        self._opened = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._closing = False
        self._connect(timeout)
        self._start(timeout)

    def _connect(self, timeout: float) -> None:
        """Set up the transport that ``_read()`` (in the reader thread) uses."""
        raise NotImplementedError

    def _add(self, event: StreamEvent) -> None:
        with self._changed:
            if self._closing:
                return  # what arrives after drop() or close() was never seen
            if event.id is not None:
                self.last_event_id = event.id
            if event.event == "welcome" and self.welcome is None:
                self.welcome = event.data if isinstance(event.data, dict) else None
                self._opened.set()
            elif event.event:
                self.events.append(event)
            self._changed.notify_all()

    def _run(self) -> None:
        try:
            self._read()
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting test
            if not self._closing:
                self.error = exc
        finally:
            self.ended.set()
            self._opened.set()
            with self._changed:
                self._changed.notify_all()

    def _read(self) -> None:
        raise NotImplementedError

    def _start(self, timeout: float) -> None:
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.session.id}")
        self._thread.daemon = True
        self._thread.start()
        if not self._opened.wait(timeout):
            self.close()
            raise TimeoutError(f"{self!r}: no welcome within {timeout} s")
        if self.welcome is None:
            raise ConnectionError(f"{self!r} did not open: {self.error!r}")

    def of(self, *names: str) -> list[StreamEvent]:
        """The events received so far, only those of type ``names`` when given."""
        with self._changed:
            return [e for e in self.events if not names or e.event in names]

    def ids(self) -> list[str]:
        return [e.id for e in self.of() if e.id is not None]

    def wait_for(
        self,
        count: int | None = None,
        *,
        event: str | None = None,
        until: Callable[[list[StreamEvent]], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[StreamEvent]:
        """Wait until ``count`` events (of type ``event``) arrived, or ``until(events)``
        holds; returns those events. Fails with what did arrive."""
        if count is None and until is None:
            count = 1

        def ready() -> bool:
            got = [e for e in self.events if event is None or e.event == event]
            return (count is None or len(got) >= count) and (until is None or until(got))

        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0 or self.ended.is_set():
                    what = f"{count} event(s)" if count is not None else "the condition"
                    kind = f" of type {event!r}" if event else ""
                    why = "the stream ended" if self.ended.is_set() else f"{timeout} s passed"
                    raise AssertionError(
                        f"session {self.session.id}: waited for {what}{kind}, {why};"
                        f" received {self.events!r}"
                        + (f"; error {self.error!r}" if self.error else "")
                    )
                self._changed.wait(left)
            return [e for e in self.events if event is None or e.event == event]

    def drop(self) -> None:
        """Cut the connection without a goodbye, as a network drop would."""
        self._stop(abrupt=True)

    def close(self) -> None:
        self._stop(abrupt=False)

    def _stop(self, *, abrupt: bool) -> None:
        with self._changed:
            self._closing = True
        if (abrupt or self._shutdown_on_close) and self._socket is not None:
            # Unblocks the reader at once; closing a client from another thread may not.
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._close_transport()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _close_transport(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resume(self: _S, timeout: float = 10.0) -> _S:
        """A new stream of the same session and channels from this one's last event id."""
        self.close()
        stream = type(self)(
            self.session, self.channels, last_event_id=self.last_event_id, timeout=timeout
        )
        self.session.streams.append(stream)
        return stream

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session={self.session.id!r}, channels={list(self.channels)})"


class SSEStream(_Stream):
    """``GET /stream/sse`` read in a background thread."""

    _shutdown_on_close = True  # an SSE client says goodbye by closing the connection

    def _connect(self, timeout: float) -> None:
        self.status_code = 0
        self._client = httpx.Client(
            base_url=self.session.base_url,
            headers=self.session.headers,
            timeout=httpx.Timeout(timeout, read=None),
        )
        self._response: httpx.Response | None = None

    def _read(self) -> None:
        headers = {"Last-Event-ID": self.resumed_from} if self.resumed_from else {}
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("channel", c) for c in self.channels
        ]
        with self._client.stream(
            "GET", self.session.path + "/sse", params=params, headers=headers
        ) as response:
            self._response = response
            self._socket = response.extensions["network_stream"].get_extra_info("socket")
            self.status_code = response.status_code
            if response.status_code != 200:
                response.read()
                raise ConnectionError(
                    f"GET {self.session.path}/sse answered {response.status_code}: {response.text}"
                )
            for event, data, event_id in parse_sse(response.iter_lines()):
                self._add(StreamEvent(event, _decode(data) if event else None, event_id))

    def _close_transport(self) -> None:
        self._client.close()


class WSStream(_Stream):
    """``/stream/ws`` read in a background thread; ``send()`` for client messages."""

    def _connect(self, timeout: float) -> None:
        from websockets.sync.client import connect

        self.replies: list[dict[str, Any]] = []
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("channel", c) for c in self.channels
        ]
        if self.resumed_from:
            params.append(("last_event_id", self.resumed_from))
        query = str(httpx.QueryParams(params))
        session = self.session
        url = session.ws_url + session.path + "/ws" + (f"?{query}" if query else "")
        # Entered at once (not in a with block): the stream owns it until close().
        self._connection = connect(
            url, additional_headers=session.headers, open_timeout=timeout, ping_interval=None
        ).__enter__()
        self._socket = self._connection.socket

    def _read(self) -> None:
        for raw in self._connection:
            for message in json.loads(raw):
                kind = message.get("type", "")
                if kind == "event":
                    self._add(
                        StreamEvent(
                            message["event"], message["data"], message["id"], message["channel"]
                        )
                    )
                elif kind in ("welcome", "gap", "reset"):
                    self._add(StreamEvent(kind, message, message.get("id")))
                else:
                    with self._changed:
                        self.replies.append(message)
                        self._changed.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        self._connection.send(json.dumps(message))

    def _close_transport(self) -> None:
        self._connection.close()


class SessionClient:
    """One isolated browser session against a server: its own id, its own streams."""

    def __init__(
        self, base_url: str, session_id: str | None = None, *, path: str = "/stream"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url[len("http") :]
        self.id = session_id or f"test-{os.urandom(12).hex()}"
        self.path = path
        self.headers = {SESSION_HEADER: self.id}
        self.http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=10.0)
        self.streams: list[_Stream] = []

    @property
    def private_channel(self) -> str:
        return f"session:{self.id}"

    def sse(self, *channels: str, last_event_id: str | None = None) -> SSEStream:
        stream = SSEStream(self, channels, last_event_id=last_event_id)
        self.streams.append(stream)
        return stream

    def websocket(self, *channels: str, last_event_id: str | None = None) -> WSStream:
        stream = WSStream(self, channels, last_event_id=last_event_id)
        self.streams.append(stream)
        return stream

    def events(self) -> list[StreamEvent]:
        """Every event any stream of this session received."""
        return [event for stream in self.streams for event in stream.of()]

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.http.close()

    def __repr__(self) -> str:
        return f"SessionClient({self.id!r})"
