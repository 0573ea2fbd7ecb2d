"""The FastAPI layer and the server layer name the handoff extension the same way."""

from __future__ import annotations

import subprocess
import sys


def test_the_routes_look_up_the_key_the_protocol_classes_provide() -> None:
    from sessionstream.fastapi import native
    from sessionstream.server import handoff

    assert native.HANDOFF_EXTENSION == handoff.HANDOFF_EXTENSION


def test_importing_the_fastapi_layer_does_not_load_the_server_layer() -> None:
    code = "import sys, sessionstream.fastapi; print('sessionstream.server' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
