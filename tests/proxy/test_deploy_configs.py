"""deploy/gunicorn.conf.py serves a stream with the handoff worker; the Container Apps
manifest has what docs/production.md promises (WebSocket-capable ingress, probes on /health,
scale rules, the Event Hubs connection string from a secret, keep-alives under the
ingress idle timeout)."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest
import yaml

from sessionstream.config import StreamConfig
from sessionstream.testing.server import FD, StreamServer
from tests.integration.support import SSEClient, publish, session_id

from .conftest import ROOT, STREAM_APP

GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
MANIFEST = ROOT / "deploy" / "azure" / "containerapp.yaml"
INGRESS_IDLE_TIMEOUT = 240.0  # Azure Container Apps ingress, documented by Azure


@pytest.mark.asyncio
async def test_gunicorn_config_streams_natively() -> None:
    # --bind on the command line wins over the file's, as gunicorn documents.
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)]
    command += ["--bind", "fd://" + FD, "--no-control-socket", STREAM_APP]
    with StreamServer(
        command=command, cwd=ROOT, env={"SESSIONSTREAM_HEALTH_SESSIONS": "always"}
    ) as server:
        async with SSEClient(server.url, ["gunicorn"], session_id=session_id("gunicorn")) as sse:
            (event_id,) = await publish(server, "gunicorn", {"via": "gunicorn"})  # type: ignore[arg-type]
            event = await sse.next()
            assert (event.id, event.json()) == (event_id, {"via": "gunicorn"})
            async with httpx.AsyncClient(timeout=5) as client:
                health = (await client.get(server.url + "/health")).json()
            assert health["delivery"]["mode"] == "native", health["delivery"]
            assert health["delivery"]["open"]["native"]["sse"] == 1, health["delivery"]


def load_manifest() -> dict[str, Any]:
    document = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(document, dict)
    return document


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


def test_manifest_ingress_probes_and_scale() -> None:
    props = load_manifest()["properties"]
    ingress = props["configuration"]["ingress"]
    assert ingress["targetPort"] == 8000 and ingress["transport"] == "http", ingress
    (container,) = props["template"]["containers"]
    probes = {probe["type"]: probe for probe in container["probes"]}
    assert set(probes) == {"Startup", "Readiness", "Liveness"}
    for probe in probes.values():
        assert probe["httpGet"] == {"path": "/health", "port": 8000}, probe
    rules = props["template"]["scale"]["rules"]
    assert rules and all("http" in rule or "tcp" in rule or "custom" in rule for rule in rules)
    assert props["template"]["scale"]["minReplicas"] >= 1  # streams need a running replica


def test_manifest_takes_the_event_hubs_connection_string_from_a_secret() -> None:
    props = load_manifest()["properties"]
    secrets = {secret["name"] for secret in props["configuration"]["secrets"]}
    (container,) = props["template"]["containers"]
    env = env_of(container)
    item = env["SESSIONSTREAM_KAFKA_EVENT_HUBS_CONNECTION_STRING"]
    assert "value" not in item and item["secretRef"] in secrets, item


def test_keepalives_are_well_under_the_ingress_idle_timeout() -> None:
    (container,) = load_manifest()["properties"]["template"]["containers"]
    env = {name: item["value"] for name, item in env_of(container).items() if "value" in item}
    config = StreamConfig.from_env(env)
    # Several keep-alives per idle window, so one lost or late frame is not a disconnect.
    assert config.heartbeat_interval * 4 <= INGRESS_IDLE_TIMEOUT, config.heartbeat_interval
    assert (config.ws_idle_timeout / 2) * 4 <= INGRESS_IDLE_TIMEOUT, config.ws_idle_timeout
    defaults = StreamConfig()
    assert env["SESSIONSTREAM_HEARTBEAT_INTERVAL"] == f"{defaults.heartbeat_interval:g}"
    assert env["SESSIONSTREAM_WS_IDLE_TIMEOUT"] == f"{defaults.ws_idle_timeout:g}"
