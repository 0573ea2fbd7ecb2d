"""The plain library stands without its web layer: sources, configuration and the core
import and work with FastAPI, Starlette and uvicorn absent."""

from __future__ import annotations

import json
import subprocess
import sys

PLAIN = [
    "sessionstream",
    "sessionstream.config",
    "sessionstream.kafka",
    "sessionstream.redis_backend",
    "sessionstream.session_ids",
]

CHECK = """
import importlib, json, sys
for name in ("fastapi", "starlette", "uvicorn", "prometheus_client"):
    sys.modules[name] = None  # importing any of them now raises ImportError
for name in {plain!r}:
    importlib.import_module(name)
from sessionstream.kafka import KafkaClients, KafkaSettings
import sessionstream
clients = KafkaClients(sessionstream.Hub(), KafkaSettings())
clients.start()  # not configured: starts nothing
print(json.dumps({{
    "health": clients.health()["status"],
    "web": sorted(m for m in sys.modules if m.startswith(("sessionstream.fastapi",
        "sessionstream.server", "sessionstream.testing"))),
}}))
"""


def test_the_plain_library_imports_and_runs_without_the_web_layer() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(plain=PLAIN)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"health": "disabled", "web": []}
