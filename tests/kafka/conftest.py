"""The real Kafka broker for the ``kafka`` tests: started once per session by
``scripts/kafka.sh`` and stopped again only if this session started it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sessionstream as ss
from tests.integration.support import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "scripts" / "kafka.sh"
KAFKA_APP = "tests.kafka.kafka_app:app"


# A Kafka 4.x broker beside the default 3.9 one: its own ports and data dir (under the
# git-ignored .kafka/); kafka.sh caches its jars per version.
KAFKA4_VERSION = "4.1.0"
KAFKA4_ENV = {
    "KAFKA_VERSION": KAFKA4_VERSION,
    "KAFKA_PORT": "19192",
    "KAFKA_CONTROLLER_PORT": "19193",
    "KAFKA_DATA": str(ROOT / ".kafka" / "kafka4"),
}


def kafka_sh(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def bootstrap_servers() -> str:
    return os.environ.get("SESSIONSTREAM_TEST_KAFKA", "") or kafka_sh("bootstrap").stdout.strip()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a running broker; starts one when none runs."""
    started = False
    if kafka_sh("status").returncode != 0:
        result = kafka_sh("start", timeout=240)
        if result.returncode != 0:
            pytest.fail(f"scripts/kafka.sh start failed:\n{result.stdout}\n{result.stderr}")
        started = True
    try:
        yield bootstrap_servers()
    finally:
        if started:
            kafka_sh("stop", timeout=120)


@pytest.fixture(scope="session")
def kafka4_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka 4.x broker started for this session and always stopped."""
    kafka_sh("stop", env=KAFKA4_ENV)  # a leftover of an interrupted run: begin afresh
    result = kafka_sh("start", timeout=300, env=KAFKA4_ENV)
    try:
        if result.returncode != 0:
            pytest.fail(f"kafka.sh start (Kafka {KAFKA4_VERSION}) failed:\n{result.stderr}")
        # The version kafka.sh reports is the one it runs: the tests are about 4.x.
        assert f"kafka {KAFKA4_VERSION} running" in result.stdout, result.stdout
        yield kafka_sh("bootstrap", env=KAFKA4_ENV).stdout.strip()
    finally:
        kafka_sh("stop", timeout=120, env=KAFKA4_ENV)


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> ss.KafkaAdmin:
    return ss.KafkaAdmin({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def new_topic(kafka_admin: ss.KafkaAdmin, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Creates a topic unique to the test and returns its name."""

    def create(tag: str = "", partitions: int = 3) -> str:
        name = f"t-{request.node.name[:40]}-{tag}-{os.urandom(4).hex()}".replace("[", "-")
        name = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
        kafka_admin.create_topic(name, partitions)
        # A consumer subscribing before the broker's metadata has the topic would only
        # look again at its next metadata refresh (minutes): wait for it here.
        deadline = time.monotonic() + 15
        while kafka_admin.partitions(name, 5.0) != partitions:
            if time.monotonic() > deadline:
                pytest.fail(f"topic {name} has no metadata after 15 s")
            time.sleep(0.05)
        return name

    return create


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[ss.KafkaSink]:
    sink = ss.KafkaSink(properties={"bootstrap.servers": kafka_bootstrap})
    sink.start()
    try:
        yield sink
    finally:
        sink.stop(5.0)


@pytest.fixture
def kafka_server(kafka_bootstrap: str) -> Iterator[Callable[..., ServerProcess]]:
    """Starts the Kafka test app (uvicorn subprocesses) with extra env; always stopped."""
    servers: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        server = ServerProcess(
            KAFKA_APP,
            {
                "SESSIONSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "SESSIONSTREAM_KAFKA_READY_TIMEOUT": "20",
                # The tests read the session pool's per-session detail.
                "SESSIONSTREAM_HEALTH_SESSIONS": "always",
                **env,
            },
        )
        servers.append(server)
        return server.start(timeout=40.0)

    yield start
    for server in servers:
        server.stop()
