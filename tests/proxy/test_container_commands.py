"""The container's start command and health check, run as deploy/Dockerfile runs them.

No Docker engine here: the ``CMD`` and ``HEALTHCHECK`` exec forms are read from the
Dockerfile and run as they are, outside a container, against the image's default app
(``APP_SOURCE``, the quickstart, as ``app.py`` in the working directory). Only the
address differs: ``0.0.0.0:8000`` becomes a free loopback port, so the test cannot
collide with anything else on the machine; ``python`` is this interpreter.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import ROOT, free_port

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> dict[str, str]:
    """The last value of each instruction of the final stage, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found[keyword.upper()] = rest.strip()
    return found


def exec_form(value: str) -> list[str]:
    assert value.startswith("["), f"expected the exec form (a JSON array), got {value!r}"
    command = json.loads(value)
    assert all(isinstance(part, str) for part in command), command
    return command


def healthcheck_command(value: str) -> list[str]:
    options, marker, command = value.partition("CMD ")
    assert marker, f"HEALTHCHECK without CMD: {value!r}"
    assert "--timeout=" in options and "--interval=" in options, options
    return exec_form(command.strip())


def localize(command: list[str], port: int) -> list[str]:
    out = []
    for part in command:
        part = part.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        out.append({"0.0.0.0": "127.0.0.1", "8000": str(port)}.get(part, part))
    if out[0] == "python":
        out[0] = sys.executable
    return out


def test_dockerfile_is_multi_stage_non_root_and_checks_health() -> None:
    text = DOCKERFILE.read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and " AS builder" in stages[0], stages
    assert all("python:3.11-slim" in stage for stage in stages), stages
    assert "make wheel" in text and "--from=builder /src/wheelhouse/" in text
    found = instructions()
    assert found["USER"] not in ("root", "0"), found["USER"]
    assert "/health" in found["HEALTHCHECK"]
    assert exec_form(found["CMD"])[:3] == ["sessionstream", "serve", "app:app"]


def run_check(command: list[str]) -> int:
    return subprocess.run(command, capture_output=True, timeout=10).returncode


def test_start_command_and_health_check(tmp_path: Path) -> None:
    found = instructions()
    port = free_port()
    start = localize(exec_form(found["CMD"]), port)
    check = localize(healthcheck_command(found["HEALTHCHECK"]), port)
    assert "--port" in start and str(port) in start, start
    # The image's WORKDIR holds APP_SOURCE as app.py.
    app_source = shlex.split(found["ARG"].partition("=")[2])[0]
    shutil.copy(ROOT / app_source, tmp_path / "app.py")
    # The console script the wheel installs, from this environment.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    from sessionstream.testing.server import pythonpath

    env["PYTHONPATH"] = pythonpath(tmp_path)
    assert run_check(check) != 0, "health check passed with no server running"

    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(start, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while run_check(check) != 0:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "health check never passed"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=5) as client:
            assert client.post(base + "/announce", params={"text": "up"}).status_code == 200
            health = client.get(base + "/health").json()
        # The start command is the one that hands streams to the native engine.
        assert health["delivery"]["mode"] == "native", health["delivery"]

        proc.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        # Draining (503) or gone (refused): either way the check fails from now on.
        assert run_check(check) != 0
        proc.wait(timeout=15)
        assert time.monotonic() - stopping < 8, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert run_check(check) != 0, "health check passed after the server exited"
