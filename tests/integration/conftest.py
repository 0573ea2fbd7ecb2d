"""Server fixtures: every server runs in a subprocess and is always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .support import ServerProcess, delivery_modes

DEMO_APP = "examples.demo.app:app"
STREAM_APP = "tests.integration.stream_app:app"

DEMO_ENV = {
    "DEMO_AGENT_TOKEN_DELAY": "0.005",
    "DEMO_AGENT_SLOW_TOKEN_DELAY": "0.08",
    "DEMO_CRAWL_STEP_DELAY": "0.03",
    # The tests read per-session health detail, which /health hides by default.
    "SESSIONSTREAM_HEALTH_SESSIONS": "always",
}


@pytest.fixture(scope="module", params=delivery_modes())
def delivery(request: pytest.FixtureRequest) -> str:
    """Every server test runs with native delivery (the handoff protocol classes) and with
    the Python fallback (plain uvicorn)."""
    return str(request.param)


@pytest.fixture
def start_server(delivery: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server with extra env; stopped at the end of the test."""
    servers: list[ServerProcess] = []

    def start(app: str = STREAM_APP, **env: str) -> ServerProcess:
        server = ServerProcess(app, env, delivery=delivery)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def demo_server(delivery: str) -> Iterator[ServerProcess]:
    server = ServerProcess(DEMO_APP, DEMO_ENV, delivery=delivery)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stream_server(delivery: str) -> Iterator[ServerProcess]:
    server = ServerProcess(
        STREAM_APP, {"SESSIONSTREAM_HISTORY_MAX_EVENTS": "64"}, delivery=delivery
    )
    try:
        yield server.start()
    finally:
        server.stop()
