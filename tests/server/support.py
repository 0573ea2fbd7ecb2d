"""Real servers and raw clients for the handoff tests.

``Server`` runs a server command (uvicorn, ``sessionstream serve``, ``uvicorn.run`` or
gunicorn) in a subprocess on a loopback socket it inherits, so there is no port race,
and always stops it (``sessionstream.testing.StreamServer``). ``RawConnection`` speaks
HTTP byte for byte, for what httpx and websockets cannot send: pipelined requests, bytes
before a ``101``, HTTP/1.0.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from sessionstream.testing.server import FD, StreamServer, pythonpath

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.server.handoff_app:app"
HTTPTOOLS = "sessionstream.server:HttpToolsHandoffProtocol"
H11 = "sessionstream.server:H11HandoffProtocol"
WS = "sessionstream.server:WebSocketsSansIOHandoffProtocol"

UVICORN_RUN = """
import sys
import uvicorn
from sessionstream.server import HttpToolsHandoffProtocol, WebSocketsSansIOHandoffProtocol
uvicorn.run(
    "tests.server.handoff_app:app",
    fd=int(sys.argv[1]),
    http=HttpToolsHandoffProtocol,
    ws=WebSocketsSansIOHandoffProtocol,
    log_level="info",
    timeout_graceful_shutdown=15,
)
"""


def uvicorn_command(*options: str, app: str = APP) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--fd",
        FD,
        "--log-level",
        "info",
        "--timeout-graceful-shutdown",
        "15",
        *options,
    ]


MODES: dict[str, list[str]] = {
    "httptools": uvicorn_command("--http", HTTPTOOLS, "--ws", WS),
    "h11": uvicorn_command("--http", H11, "--ws", WS),
    "httptools-asyncio": uvicorn_command("--http", HTTPTOOLS, "--ws", WS, "--loop", "asyncio"),
    "h11-asyncio": uvicorn_command("--http", H11, "--ws", WS, "--loop", "asyncio"),
    "sessionstream-serve": [
        sys.executable,
        "-m",
        "sessionstream",
        "serve",
        APP,
        "--fd",
        FD,
        "--log-level",
        "info",
        "--timeout-graceful-shutdown",
        "15",
    ],
    "uvicorn-run": [sys.executable, "-c", UVICORN_RUN, FD],
    "gunicorn": [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        "sessionstream.server.gunicorn.HandoffWorker",
        "--bind",
        "fd://" + FD,
        "--workers",
        "1",
        "--graceful-timeout",
        "15",
        "--log-level",
        "info",
        "--no-control-socket",
        APP,
    ],
}
"""Every way of running the handoff classes that the tests cover."""

# Levels as uvicorn and gunicorn print them; gunicorn 27 with uvicorn-worker logs
# "Error while closing socket" at INFO on every shutdown, handoff or not.
ERROR_PATTERN = re.compile(r"ERROR|CRITICAL|Traceback|Exception in|returned without")


def _pythonpath() -> str:
    return pythonpath(ROOT)


class Server(StreamServer):
    """A server subprocess on 127.0.0.1; ``stop()`` always ends it."""

    def __init__(self, command: list[str], *, tls: bool = False, env: dict[str, str] | None = None):
        super().__init__(command=command, tls=tls, env=env, cwd=ROOT, backlog=128)

    def refusals(self) -> list[str]:
        return [entry["reason"] for entry in self.get("/refusals").json()]

    def assert_clean_log(self) -> None:
        errors = [line for line in self.log().splitlines() if ERROR_PATTERN.search(line)]
        assert not errors, "the server logged errors:\n" + self.log()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server whatever its state; idempotent."""
        self.close()


class RawConnection:
    """One TCP connection to a server, read and written byte for byte."""

    def __init__(self, server: Server, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.buffer = bytearray()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(f"connection closed; unread: {bytes(self.buffer[:200])!r}")
        self.buffer += data

    def _take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_until(self, marker: bytes) -> bytes:
        start = 0
        while (end := self.buffer.find(marker, start)) < 0:
            start = max(0, len(self.buffer) - len(marker) + 1)
            self._fill()
        return self._take(end + len(marker))

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        return self._take(size)

    def read_to_eof(self) -> bytes:
        try:
            while True:
                self._fill()
        except EOFError:
            return self._take(len(self.buffer))

    def read_head(self) -> tuple[int, dict[str, str]]:
        status_line, *lines = self.read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def read_chunked(self) -> bytes:
        """A whole chunked body, up to and including its terminating chunk."""
        body = b""
        while True:
            size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
            if size == 0:
                assert self.read_until(b"\r\n") == b"\r\n"
                return body
            body += self.read_exact(size)
            assert self.read_exact(2) == b"\r\n"

    def read_chunk(self) -> bytes:
        """One chunk of a chunked body."""
        size = int(self.read_until(b"\r\n")[:-2], 16)
        data = self.read_exact(size)
        assert self.read_exact(2) == b"\r\n"
        return data

    def read_ws_frame(self) -> tuple[int, bytes]:
        """One unmasked server frame: (opcode, payload)."""
        first, second = self.read_exact(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self.read_exact(2), "big")
        elif length == 127:
            length = int.from_bytes(self.read_exact(8), "big")
        return first & 0x0F, self.read_exact(length)


def get_request(target: str, *, version: str = "1.1", extra: str = "") -> bytes:
    return f"GET {target} HTTP/{version}\r\nHost: test\r\n{extra}\r\n".encode()


def upgrade_request(target: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {target} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def parse_sse(text: str) -> list[dict[str, str]]:
    """SSE blocks as dicts of their fields (enough for the test app's frames)."""
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append(fields)
    return events


def handoff_info(event: dict[str, str]) -> dict[str, Any]:
    """The test app's first frame: what ``detach()`` returned."""
    assert event.get("event") == "handoff", event
    info = json.loads(event["data"])
    info["buffered"] = bytes.fromhex(info["buffered"])
    return info


def client_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
