"""Handoff test fixtures: every server runs in a subprocess and is always stopped."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .support import Server


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """Start ``Server(command, ...)``; every server started is stopped at the end."""
    servers: list[Server] = []

    def start(
        command: list[str], *, tls: bool = False, env: dict[str, str] | None = None
    ) -> Server:
        server = Server(command, tls=tls, env=env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key
