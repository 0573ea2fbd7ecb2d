"""Run an ASGI app under a real server in a subprocess, on a port nothing can race for.

The test process binds a loopback socket and the server inherits it (``--fd``): the port
is known before the server starts, connections made while it restarts wait in the
socket's backlog, and the server can be stopped and started again on the same port.
``stop()`` always ends the process: SIGTERM (a graceful shutdown: streams get their
``shutdown`` close), then SIGKILL after a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

Delivery = Literal["native", "python"]
DELIVERIES: tuple[Delivery, ...] = ("native", "python")

FD = "{fd}"
"""Stands for the inherited listening socket's descriptor in a custom ``command``."""


def server_command(app: str, delivery: Delivery, args: Sequence[str] = ()) -> list[str]:
    """``sessionstream serve`` (native delivery) or plain uvicorn (the Python fallback)."""
    if delivery == "native":
        head = [sys.executable, "-m", "sessionstream", "serve"]
    elif delivery == "python":
        head = [sys.executable, "-m", "uvicorn"]
    else:
        raise ValueError(f"delivery must be one of {DELIVERIES}, got {delivery!r}")
    return [*head, app, "--fd", FD, *args]


def pythonpath(cwd: str | os.PathLike[str]) -> str:
    """``PYTHONPATH`` for a server: the app from ``cwd``, the same sessionstream as the
    tests, then what the tests were given."""
    import sessionstream

    parts = [str(cwd), str(Path(sessionstream.__file__).resolve().parent.parent)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


class StreamServer:
    """A server subprocess on 127.0.0.1; ``close()`` always ends it and frees the port.

    Give ``app`` (``"module:attribute"``) and ``delivery``, or a whole ``command`` in
    which ``"{fd}"`` stands for the listening socket's descriptor.
    """

    def __init__(
        self,
        app: str | None = None,
        *,
        delivery: Delivery = "native",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_level: str = "warning",
        graceful_timeout: float = 15.0,
        tls: bool = False,
        backlog: int = 512,
    ) -> None:
        if command is None:
            if not app or ":" not in app:
                raise ValueError(
                    f"app must name an ASGI app as 'module:attribute' (got {app!r}); pass it"
                    " to stream_server(app=...), --sessionstream-app or sessionstream_app"
                )
            command = server_command(
                app,
                delivery,
                [
                    "--log-level",
                    log_level,
                    "--timeout-graceful-shutdown",
                    str(int(graceful_timeout)),
                    *args,
                ],
            )
        self.app = app
        self.delivery = delivery
        self.graceful_timeout = graceful_timeout
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port: int = self.sock.getsockname()[1]
        fd = str(self.sock.fileno())
        self.command = [part.replace(FD, fd) for part in command]
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": pythonpath(self.cwd), **(env or {})}
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            "w+b", prefix="sessionstream-server-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def __enter__(self) -> StreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, timeout: float = 20.0) -> StreamServer:
        """Start the process and wait until ``/health`` answers 200."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"server on port {self.port} is already running")
        self.starts += 1
        if self.starts > 1:
            self._log.write(f"--- start {self.starts} ---\n".encode())
            self._log.flush()
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            pass_fds=[self.sock.fileno()],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, verify=False) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.proc.returncode}: {self.command}\n{self.log()}"
                    )
                try:
                    if client.get(self.url + "/health").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout} s:\n{self.log()}")

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("server was never started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Send a signal without waiting (to test shutdown behaviour)."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        if self.proc is None:
            raise RuntimeError("server was never started")
        return self.proc.wait(timeout)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` (the graceful timeout plus 5 s); keeps
        the port for ``start()`` / ``restart()``. Returns the exit code."""
        return self._end_process(timeout)

    def _end_process(self, timeout: float | None = None) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.graceful_timeout + 5 if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def restart(self, timeout: float = 20.0) -> StreamServer:
        """Stop and start again on the same port (a new process: a new epoch of ids)."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the server whatever its state, release the port, delete the log."""
        try:
            self._end_process()
        finally:
            self.sock.close()
            if not self._log.closed:
                self._log.close()
                self.log_path.unlink(missing_ok=True)

    def log(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if self._log.closed:
            return ""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        kw.setdefault("timeout", 5.0)
        return httpx.get(self.url + path, verify=False, **kw)

    def health(self) -> dict[str, Any]:
        return self.get("/health").json()

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def __repr__(self) -> str:
        what = self.app or self.command
        return f"StreamServer({what!r}, delivery={self.delivery!r}, url={self.url!r})"
