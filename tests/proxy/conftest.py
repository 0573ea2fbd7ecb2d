"""nginx from Debian in front of a real server on loopback, run by ``scripts/nginx.sh``
with the shipped site file (``deploy/nginx/sessionstream.conf``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.support import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
STREAM_APP = "tests.integration.stream_app:app"
NGINX_SH = ROOT / "scripts" / "nginx.sh"
NGINX = os.environ.get("SESSIONSTREAM_NGINX_BIN", "/usr/sbin/nginx")


def stream_app_server(env: dict[str, str] | None = None, *, cli: bool = False) -> ServerProcess:
    """The integration suite's stream test app with native delivery: under ``sessionstream
    serve`` with ``cli``, else under uvicorn with the handoff protocol classes named."""
    launcher = ("sessionstream", "serve") if cli else ("uvicorn",)
    return ServerProcess(STREAM_APP, env, delivery="native", launcher=launcher)


def free_port() -> int:
    # nginx binds its own socket, so the port is only reserved until it starts; a clash
    # shows up as a failed start with nginx's own error, never as a wrong test result.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Nginx:
    prefix: Path
    port: int
    upstream_port: int
    read_timeout: str | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _run(self, action: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "SESSIONSTREAM_NGINX_BIN": NGINX,
            "SESSIONSTREAM_NGINX_DIR": str(self.prefix),
            "SESSIONSTREAM_NGINX_PORT": str(self.port),
            "SESSIONSTREAM_NGINX_UPSTREAM": f"127.0.0.1:{self.upstream_port}",
        }
        if self.read_timeout:
            env["SESSIONSTREAM_NGINX_READ_TIMEOUT"] = self.read_timeout
        return subprocess.run(
            ["bash", str(NGINX_SH), action], env=env, capture_output=True, text=True, timeout=30
        )

    def start(self) -> Nginx:
        result = self._run("start")
        if result.returncode != 0:
            raise RuntimeError(f"nginx.sh start failed: {result.stderr}\n{self.error_log()}")
        return self

    def stop(self) -> None:
        self._run("stop")

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    """``start_nginx(upstream_port, read_timeout="5s")``; stopped at the end of the test."""
    if not Path(NGINX).is_file():
        pytest.fail(f"{NGINX} is missing: run scripts/bootstrap.sh full (Debian's nginx)")
    started: list[Nginx] = []

    def start(upstream_port: int, read_timeout: str | None = None) -> Nginx:
        prefix = tmp_path / f"nginx-{len(started)}"
        proxy = Nginx(prefix, free_port(), upstream_port, read_timeout)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/bootstrap.sh full")
    return path
