"""Real servers and raw clients for the handoff tests.

``Server`` runs a server command (uvicorn, ``sessionstream serve``, ``uvicorn.run`` or
gunicorn) in a subprocess on a loopback socket it inherits, so there is no port race,
and always stops it. ``RawConnection`` speaks HTTP byte for byte, for what httpx and
websockets cannot send: pipelined requests, bytes before a ``101``, HTTP/1.0.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.server.handoff_app:app"
HTTPTOOLS = "sessionstream.server:HttpToolsHandoffProtocol"
H11 = "sessionstream.server:H11HandoffProtocol"
WS = "sessionstream.server:WebSocketsSansIOHandoffProtocol"
FD = "{fd}"
"""Stands for the inherited listening socket's descriptor in a command."""

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
    import sessionstream

    parts = [str(ROOT), str(Path(sessionstream.__file__).resolve().parent.parent)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


class Server:
    """A server subprocess on 127.0.0.1; ``stop()`` always ends it."""

    def __init__(self, command: list[str], *, tls: bool = False, env: dict[str, str] | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        fd = str(self.sock.fileno())
        self.command = [part.replace(FD, fd) for part in command]
        self.tls = tls
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": _pythonpath(), **(env or {})}
        self._log = tempfile.NamedTemporaryFile("w+b", prefix="handoff-", suffix=".log")  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Server:
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            pass_fds=[self.sock.fileno()],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not answer in {timeout} s:\n{self.log()}")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        kw.setdefault("timeout", 5.0)
        return httpx.get(self.url + path, verify=False, **kw)

    def refusals(self) -> list[str]:
        return [entry["reason"] for entry in self.get("/refusals").json()]

    def log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def assert_clean_log(self) -> None:
        errors = [line for line in self.log().splitlines() if ERROR_PATTERN.search(line)]
        assert not errors, "the server logged errors:\n" + self.log()

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Stop the server whatever its state; idempotent."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            self.sock.close()
            self._log.close()


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
