"""The servers under test: how to start each one pinned to the server core, and its
benchmark control endpoints (``/bench/publish``, ``/bench/stats``)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from runner.system import process_tree, rss_bytes, set_autogroup_nice

# uvicorn's own protocols: the app sees no handoff extension and delivers in Python.
PLAIN_UVICORN = ("--http", "httptools")
# sessionstream's protocol classes: the stream routes hand their sockets to the engine.
HANDOFF_UVICORN = (
    "--http",
    "sessionstream.server:HttpToolsHandoffProtocol",
    "--ws",
    "sessionstream.server:WebSocketsSansIOHandoffProtocol",
)


@dataclass(frozen=True)
class ServerSpec:
    key: str
    label: str
    transports: tuple[str, ...]
    kind: str  # "sessionstream" | "cpp" | a module of bench/baselines ("queue_server", ...)
    env: tuple[tuple[str, str], ...] = ()
    uvicorn: tuple[str, ...] = PLAIN_UVICORN  # protocol options of Python servers
    # Streams of this server must be delivered natively (checked once all are connected).
    native: bool = False


SERVERS: dict[str, ServerSpec] = {
    "s": ServerSpec(
        "s",
        "(s) sessionstream, native delivery",
        ("sse", "ws"),
        "sessionstream",
        uvicorn=HANDOFF_UVICORN,
        native=True,
    ),
    "p": ServerSpec("p", "(p) sessionstream, Python delivery", ("sse", "ws"), "sessionstream"),
    "a": ServerSpec("a", "(a) baseline asyncio.Queue", ("sse", "ws"), "queue_server"),
    "r": ServerSpec("r", "(r) C++ reference", ("sse", "ws"), "cpp"),
    # Not in the default set: the same hub as (a) behind sse-starlette.
    "b": ServerSpec("b", "(b) sse-starlette", ("sse",), "sse_starlette_server"),
    # Not in the default set: (p) with the cyclic GC tuned, to size that recommendation.
    "g": ServerSpec(
        "g",
        "(g) Python delivery, GC tuned (experiment)",
        ("sse", "ws"),
        "sessionstream",
        (("BENCH_GC_THRESHOLD", "50000"),),
    ),
}
DEFAULT_SERVERS = ("s", "p", "a", "r")


@dataclass(frozen=True)
class Paths:
    root: Path
    python: Path
    loadgen: Path
    cpp_reference: Path
    fanout_bench: Path

    @staticmethod
    def under(root: Path) -> Paths:
        return Paths(
            root=root,
            python=root / ".venv/bin/python",
            loadgen=Path(os.environ.get("LOADGEN", root / "build/loadgen/loadgen")),
            cpp_reference=Path(
                os.environ.get("CPP_REFERENCE", root / "build/loadgen/cpp_reference/cpp_reference")
            ),
            fanout_bench=root / "build/default/fanout_bench",
        )


def nice_prefix(nice: int) -> list[str]:
    # A higher priority than the other jobs sharing the two cores keeps their bursts
    # out of the measured latency; nice(1) runs the command anyway if it may not.
    return ["nice", "-n", str(nice)] if nice else []


class ServerError(RuntimeError):
    pass


class Server:
    """One server process on ``core``; a context manager that stops it on exit."""

    def __init__(
        self,
        spec: ServerSpec,
        paths: Paths,
        port: int,
        *,
        core: int,
        heartbeat: float,
        log: Path,
        nice: int = 0,
    ) -> None:
        self.nice = nice
        self.spec = spec
        self.paths = paths
        self.port = port
        self.core = core
        self.heartbeat = heartbeat
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._tree: list[int] = []

    def command(self) -> tuple[list[str], dict[str, str]]:
        root = self.paths.root
        # The benchmark server reads SESSIONSTREAM_* (StreamConfig.from_env): only the
        # spec's own may apply, never ones the shell happened to export.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSTREAM_")}
        env["BENCH_HEARTBEAT"] = f"{self.heartbeat:g}"
        env.update(self.spec.env)
        if self.spec.kind == "cpp":
            cmd = [
                str(self.paths.cpp_reference),
                "--port",
                str(self.port),
                "--heartbeat",
                f"{self.heartbeat:g}",
            ]
        else:
            if self.spec.kind == "sessionstream":
                app, app_dir = "sessionstream_server:app", root / "bench/servers"
                # BENCH_PACKAGE_DIR: a directory holding another build of the package.
                package = os.environ.get("BENCH_PACKAGE_DIR", str(root / "python"))
                env["PYTHONPATH"] = f"{package}:{root}"
            else:
                app, app_dir = "baseline_app:app", root / "bench/servers"
                env["PYTHONPATH"] = str(root / "bench/baselines")
                env["BENCH_BASELINE"] = self.spec.kind
            # uvloop and httptools, as the seeds and the reference figures used; (s) with
            # sessionstream's httptools- and websockets-sansio-based handoff protocols.
            cmd = [
                str(self.paths.python),
                "-m",
                "uvicorn",
                app,
                "--app-dir",
                str(app_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--loop",
                "uvloop",
                *self.spec.uvicorn,
                "--no-access-log",
                "--log-level",
                "warning",
                "--backlog",
                "4096",
                # Experiments only (e.g. "--ws websockets-sansio"); unset in the reported runs.
                *os.environ.get("BENCH_UVICORN_ARGS", "").split(),
            ]
        return [*nice_prefix(self.nice), "taskset", "-c", str(self.core), *cmd], env

    def __enter__(self) -> Server:
        cmd, env = self.command()
        with self.log.open("ab") as out:
            out.write(f"\n=== {' '.join(cmd)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        set_autogroup_nice(self.proc.pid, self.nice)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.spec.label} exited with {self.proc.returncode}; see {self.log}"
                )
            try:
                self.stats(timeout=1)
                self._tree = process_tree(self.proc.pid)
                return self
            except (OSError, ServerError, http.client.HTTPException):
                time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.spec.label} did not answer on port {self.port}; see {self.log}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        # Re-read now and then: a server may fork after start (workers).
        if self.proc is not None and self.proc.poll() is None:
            tree = process_tree(self.proc.pid)
            if tree:
                self._tree = tree
        return self._tree

    def rss(self) -> int:
        return rss_bytes(self.pids())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        # SIGTERM: sessionstream drains (shutdown frames) within shutdown_timeout (5 s).
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    # -- control endpoints -------------------------------------------------

    def _request(self, method: str, path: str, timeout: float) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise ServerError(f"{method} {path}: HTTP {response.status} {body[:200]!r}")
        return json.loads(body)

    def stats(self, timeout: float = 10) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/bench/stats", timeout)
        return result

    def publish(self, rate: float, duration: float, size: int) -> None:
        self._request("POST", f"/bench/publish?rate={rate:g}&duration={duration:g}&size={size}", 10)

    def profile(self, action: str, path: str = "") -> None:
        self._request("POST", f"/bench/profile?action={action}&path={path}", 30)

    def stream_url(self, transport: str) -> str:
        if transport == "ws":
            return f"ws://127.0.0.1:{self.port}/stream/ws"
        return f"http://127.0.0.1:{self.port}/stream/sse?channel=bench"
