"""Which classes provide the extension, the ways to select them, and import hygiene."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.sync.client import connect

from sessionstream.server import _versions

from .support import (
    H11,
    HTTPTOOLS,
    MODES,
    ROOT,
    WS,
    Server,
    _pythonpath,
    uvicorn_command,
)

StartServer = Callable[..., Server]


def http_probe(server: Server) -> dict[str, object]:
    return server.get("/probe").json()


def ws_probe(server: Server) -> tuple[dict[str, object], str | None]:
    """What the WebSocket scope carried, and the negotiated extensions."""
    with connect(server.ws_url + "/ws-probe", open_timeout=10) as ws:
        assert ws.response is not None
        extensions = ws.response.headers.get("sec-websocket-extensions")
        return json.loads(ws.recv(timeout=10)), extensions


@pytest.mark.parametrize(
    ("command", "http_class"),
    [
        (MODES["httptools"], "HttpToolsHandoffProtocol"),
        (MODES["h11"], "H11HandoffProtocol"),
        (MODES["sessionstream-serve"], "HttpToolsHandoffProtocol"),  # AUTO_HTTP
        (MODES["uvicorn-run"], "HttpToolsHandoffProtocol"),
        (MODES["gunicorn"], "HttpToolsHandoffProtocol"),
    ],
    ids=["httptools", "h11", "sessionstream-serve", "uvicorn-run", "gunicorn"],
)
def test_handoff_classes_put_the_extension_in_every_scope(
    start_server: StartServer, command: list[str], http_class: str
) -> None:
    server = start_server(command)
    assert http_probe(server) == {
        "extension": True,
        "handoff": f"<HttpHandoff via {http_class}>",
        "reason": None,
    }
    scope, _ = ws_probe(server)
    assert scope["handoff"] == "<WebSocketHandoff via WebSocketsSansIOHandoffProtocol>"


@pytest.mark.parametrize(
    "options",
    [["--http", "h11"], ["--http", "httptools"], ["--http", "auto"]],
    ids=["h11", "httptools", "auto"],
)
def test_uvicorn_http_classes_have_no_extension(
    start_server: StartServer, options: list[str]
) -> None:
    server = start_server(uvicorn_command(*options, "--ws", WS))
    assert http_probe(server)["extension"] is False
    # The app's fallback: deliver in Python.
    assert server.get("/sse").json() == {"delivery": "python", "reason": "no extension"}


@pytest.mark.parametrize("ws", ["websockets", "websockets-sansio", "auto"])
def test_uvicorn_websocket_classes_have_no_extension(start_server: StartServer, ws: str) -> None:
    server = start_server(uvicorn_command("--http", HTTPTOOLS, "--ws", ws))
    scope, _ = ws_probe(server)
    assert scope["extension"] is False


def test_permessage_deflate_is_never_negotiated(start_server: StartServer) -> None:
    ours = start_server(
        uvicorn_command("--http", H11, "--ws", WS, "--ws-per-message-deflate", "true")
    )
    assert ws_probe(ours)[1] is None
    # Control: uvicorn's own class negotiates it with the same client.
    theirs = start_server(uvicorn_command("--http", H11, "--ws", "websockets-sansio"))
    assert (ws_probe(theirs)[1] or "").startswith("permessage-deflate")


@pytest.mark.parametrize(
    ("options", "env", "http_class"),
    [
        (["--http", "h11"], {}, None),
        ([], {"UVICORN_HTTP": "h11"}, None),
        (["--http", H11], {}, "H11HandoffProtocol"),
        (["--http=" + H11], {}, "H11HandoffProtocol"),
    ],
    ids=["option", "environment", "handoff-option", "handoff-option-equals"],
)
def test_sessionstream_serve_keeps_uvicorn_precedence(
    start_server: StartServer, options: list[str], env: dict[str, str], http_class: str | None
) -> None:
    server = start_server([*MODES["sessionstream-serve"], *options], env=env)
    probe = http_probe(server)
    if http_class is None:
        assert probe["extension"] is False
    else:
        assert probe["handoff"] == f"<HttpHandoff via {http_class}>"
    # --ws still defaults to ours.
    assert ws_probe(server)[0]["extension"] is True


def test_console_script_is_registered() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = pyproject["project"]["scripts"]["sessionstream"]
    assert target == "sessionstream.server.cli:main"
    module, _, name = target.partition(":")
    # The target runs uvicorn's command (here its --version, which exits 0).
    result = subprocess.run(
        [sys.executable, "-c", f"from {module} import {name}; {name}(['serve', '--version'])"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": _pythonpath()},
        cwd=ROOT,
        check=True,
    )
    assert result.stdout.startswith("Running uvicorn 0.54.0")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": _pythonpath(), **env},
        cwd=ROOT,
        check=True,
    )


def test_the_library_and_the_handoff_types_do_not_import_uvicorn() -> None:
    code = (
        "import sys, sessionstream\n"
        "assert 'sessionstream.server' not in sys.modules\n"
        "import sessionstream.server.handoff\n"
        "servers = ('uvicorn', 'httptools', 'h11', 'websockets')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in servers))"
    )
    assert run_python(code).stdout.strip() == "[]"


def test_import_warns_about_an_untested_uvicorn(tmp_path: Path) -> None:
    # A uvicorn distribution of another version, found first by importlib.metadata.
    dist = tmp_path / "uvicorn-9.9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: uvicorn\nVersion: 9.9.9\n")
    result = subprocess.run(
        [sys.executable, "-c", "import sessionstream.server, sessionstream.server.protocols"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{tmp_path}:{_pythonpath()}"},
        cwd=ROOT,
        check=True,
    )
    lines = [line for line in result.stderr.splitlines() if "tested with uvicorn" in line]
    assert lines == [
        "sessionstream.server was tested with uvicorn 0.54.0, not 9.9.9: socket handoff "
        "may misbehave; pin uvicorn==0.54.0"
    ]
    assert "tested with uvicorn" not in run_python("import sessionstream.server").stderr


def test_version_check_logs_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_versions, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="sessionstream.server"):
        assert _versions.check_uvicorn_version("0.54.0") is True
        assert caplog.records == []
        assert _versions.check_uvicorn_version("0.55.0") is False
        assert _versions.check_uvicorn_version("0.56.0") is False
    assert [record.getMessage() for record in caplog.records] == [
        "sessionstream.server was tested with uvicorn 0.54.0, not 0.55.0: socket handoff "
        "may misbehave; pin uvicorn==0.54.0"
    ]
