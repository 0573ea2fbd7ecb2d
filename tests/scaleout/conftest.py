"""The real redis-server for the ``redis`` tests, started by ``scripts/redis.sh``.

The shared server is started once per session and stopped only if this session started
it; every test gets its own key prefix, so tests never see each other's streams and
sessions. Tests that stop or restart Redis get a private server on another port.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as redis_client

from tests.integration.support import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
REDIS_SH = ROOT / "scripts" / "redis.sh"
STREAM_APP = "tests.integration.stream_app:app"

pytestmark = pytest.mark.redis


@dataclass
class RedisServer:
    """One redis-server run by scripts/redis.sh with its own port and data dir."""

    port: int
    data_dir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def sh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "SESSIONSTREAM_REDIS_PORT": str(self.port),
            "SESSIONSTREAM_REDIS_DIR": self.data_dir,
        }
        return subprocess.run(
            ["bash", str(REDIS_SH), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        result = self.sh("start")
        if result.returncode != 0:
            pytest.fail(f"scripts/redis.sh start failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        self.sh("stop")

    def running(self) -> bool:
        return self.sh("status").returncode == 0

    def client(self) -> redis_client.Redis:
        return redis_client.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The shared server (scripts/redis.sh defaults, or SESSIONSTREAM_REDIS_PORT)."""
    server = RedisServer(
        int(os.environ.get("SESSIONSTREAM_REDIS_PORT", "16379")),
        os.environ.get("SESSIONSTREAM_REDIS_DIR", str(ROOT / ".redis" / "data")),
    )
    started = not server.running()
    if started:
        server.start()
    try:
        yield server
    finally:
        if started:
            server.stop()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A server of this test's own, free to be stopped and restarted."""
    with tempfile.TemporaryDirectory(prefix="sessionstream-redis-") as data_dir:
        server = RedisServer(16390 + secrets.randbelow(500), data_dir)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def key_prefix() -> str:
    return "sst-" + secrets.token_hex(4)


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[redis_client.Redis]:
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def start_node(
    redis_server: RedisServer, key_prefix: str
) -> Iterator[Callable[..., ServerProcess]]:
    """Start a node (a uvicorn process of the stream test app) of this test's cluster:
    same Redis, same key prefix. Native delivery; every node is stopped at the end."""
    servers: list[ServerProcess] = []

    def start(
        *,
        app: str = STREAM_APP,
        redis_url: str | None = None,
        server_args: list[str] | None = None,
        **env: str,
    ) -> ServerProcess:
        server = ServerProcess(
            app,
            {
                "SESSIONSTREAM_REDIS_URL": redis_url or redis_server.url,
                "SESSIONSTREAM_REDIS_KEY_PREFIX": key_prefix,
                **env,
            },
            delivery="native",
            server_args=server_args,
        )
        servers.append(server)
        return server.start(timeout=30.0)

    yield start
    for server in servers:
        server.stop()
