"""Servers, a connection-cutting proxy and small helpers for the browser suite.

``DemoServer`` runs the demo app with uvicorn through the pytest plugin's
``StreamServer``: a subprocess on a loopback socket that the test process owns and the
server inherits, so the port is never raced for, and the server can be stopped and started
again on the same port (a restart) while browsers keep reconnecting to it. Connections
made while no server runs wait in the socket's backlog.

``DroppingProxy`` forwards TCP between the browser and the server and can cut every
connection at once: a plain network drop, with no restart behind it.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Locator, Page, expect

from sessionstream.testing import StreamServer
from tests.integration.support import SERVER_ARGS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
DEMO_APP = "examples.demo.app:app"

T = TypeVar("T")


class DemoServer(StreamServer):
    """The demo app under uvicorn on 127.0.0.1, restartable on its port: the plugin's
    ``StreamServer``, started as the integration suite's ``ServerProcess`` is (uvicorn with
    the handoff protocol classes named for native delivery)."""

    def __init__(
        self, env: dict[str, str] | None = None, app: str = DEMO_APP, delivery: str = "python"
    ) -> None:
        # Plain uvicorn's command line (StreamServer's "python" delivery) plus the
        # protocol classes that make it native.
        super().__init__(
            app,
            delivery="python",
            env=env,
            args=SERVER_ARGS[delivery],
            cwd=ROOT,
            graceful_timeout=10,
        )
        self.delivery = "native" if delivery == "native" else "python"

    def active_connections(self) -> int:
        return int(self.health()["stream"]["active_connections"])


class _Pair:
    """One proxied connection: the browser's socket, the server's, and their two pumps.

    With ``hold_upstream`` the server's side stays open after the browser's side ends
    (what the server sends is read and discarded), as behind a proxy that keeps upstream
    connections alive: the server cannot see that the browser went away.
    """

    def __init__(
        self, client: socket.socket, upstream: socket.socket, *, hold_upstream: bool = False
    ) -> None:
        self.sockets = (client, upstream)
        self.hold_upstream = hold_upstream
        self.pumps = [
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True),
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True),
        ]
        for pump in self.pumps:
            pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_upstream: bool) -> None:
        forward = True
        try:
            while data := src.recv(65536):
                if not forward:
                    continue
                try:
                    dst.sendall(data)
                except OSError:
                    if not (from_upstream and self.hold_upstream):
                        raise
                    forward = False  # the browser is gone: keep the server's side open
        except OSError:
            pass
        finally:
            if from_upstream or not self.hold_upstream:
                self.cut()
            else:
                _shutdown(self.sockets[0])

    def cut(self) -> None:
        for s in self.sockets:
            _shutdown(s)

    def close(self) -> None:
        self.cut()
        for pump in self.pumps:
            pump.join(5)
        for s in self.sockets:
            s.close()


def _shutdown(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class DroppingProxy:
    """A TCP forwarder to ``127.0.0.1:target_port`` whose connections can all be cut
    (``drop``); with ``hold_upstream`` it keeps the server's side of a connection open
    after the browser's side ended."""

    def __init__(self, target_port: int, *, hold_upstream: bool = False) -> None:
        self.target_port = target_port
        self.hold_upstream = hold_upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._closed = False
        self.dropped = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept")
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                if self._closed:
                    return
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._pairs.append(_Pair(client, upstream, hold_upstream=self.hold_upstream))

    def drop(self) -> int:
        """Cut every open connection (both ends see it end at once); returns how many
        were still open."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        open_pairs = 0
        for pair in pairs:
            open_pairs += any(pump.is_alive() for pump in pair.pumps)
            pair.close()
        self.dropped += open_pairs
        return open_pairs

    def close(self) -> None:
        with self._lock:
            self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._acceptor.join(5)
        self._listener.close()
        self.drop()


def wait_until(check: Callable[[], T], *, timeout: float = 10.0, what: str = "") -> T:
    """Call ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}; last={last!r}")


def health_key(sid: str) -> str:
    """How /health names a session by default (a digest, never the id itself)."""
    return "h:" + hashlib.sha256(sid.encode()).hexdigest()[:16]


def epoch_of(event_id: str) -> str:
    return event_id.rsplit("-", 1)[0]


def sequence_of(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


# -- pages -----------------------------------------------------------------
# The demo pages record what they receive in ``DemoUI.received`` (every event with an
# id: ``{id, event, channel, data}``) and their stream states in ``DemoUI.states``.


def badge(page: Page) -> Locator:
    return page.locator("#connection-state")


def expect_state(page: Page, state: str, timeout: float = 10_000) -> None:
    expect(badge(page)).to_have_attribute("data-state", state, timeout=timeout)


def received(page: Page, *events: str) -> list[dict[str, Any]]:
    """The events with ids the page received, optionally only those named ``events``."""
    got: list[dict[str, Any]] = page.evaluate("DemoUI.received")
    return [e for e in got if not events or e["event"] in events]


def states(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("DemoUI.states")


def shown_event_ids(page: Page) -> list[str]:
    """The event ids in the page's event log, newest first."""
    return page.locator("#event-log li[data-event-id]").evaluate_all(
        "els => els.map(e => e.dataset.eventId)"
    )


def assert_no_duplicates(ids: list[str]) -> None:
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"event ids received more than once: {repeated}"


def send_chat(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.click("#send")
