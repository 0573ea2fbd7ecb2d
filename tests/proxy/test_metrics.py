"""``/metrics`` of real servers passes ``promtool check metrics`` (Debian's prometheus
package), the shipped alert rules pass ``promtool check rules``, and every series the
dashboard and the alerts name is one a real server exports."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.support import ServerProcess, SSEClient, WSClient, publish, session_id

from .conftest import ROOT, require_tool, stream_app_server

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DEPLOY_DOC = ROOT / "docs" / "production.md"
# Exported only while a Kafka node consumer is configured (docs/production.md says so).
KAFKA_ONLY = {"sessionstream_kafka_consumer_lag"}


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require_tool("promtool"), *args], input=stdin, capture_output=True, timeout=60
    )


def exported_names(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")} | {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def referenced_names(text: str) -> set[str]:
    return set(re.findall(r"\bsessionstream_[a-z0-9_]*[a-z0-9]\b", text))


@pytest.fixture(scope="module")
def exercised_metrics() -> Iterator[str]:
    """The /metrics text of a server that has had connections, refusals and resumes of
    every outcome, taken while streams are open."""
    env = {"SESSIONSTREAM_MAX_PER_SESSION": "1", "SESSIONSTREAM_HISTORY_MAX_EVENTS": "4"}
    with stream_app_server(env) as server:
        yield _exercise(server)


def _exercise(server: ServerProcess) -> str:
    import asyncio

    async def run() -> str:
        sid = session_id("metrics")
        first, *_ = await publish(server, "metrics", "x", count=8)
        async with SSEClient(server.url, ["metrics"], session_id=sid, last_event_id=first):
            async with SSEClient(server.url, ["metrics"], session_id=sid) as refused:
                assert refused.status_code == 429
            exact = await publish(server, "metrics", "y")
            async with (
                await WSClient.open(server.ws_url, channels=["metrics"], last_event_id=exact[0]),
                await WSClient.open(server.ws_url, channels=["metrics"], last_event_id="garbage"),
            ):
                await publish(server, "metrics", "z")
                async with httpx.AsyncClient(timeout=5) as client:
                    return (await client.get(server.url + "/metrics")).text

    return asyncio.run(run())


def test_metrics_pass_promtool_lint(exercised_metrics: str) -> None:
    result = promtool("check", "metrics", stdin=exercised_metrics.encode())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b"", result


def test_exercised_series_have_samples(exercised_metrics: str) -> None:
    def value(series: str) -> float:
        match = re.search(rf"^{re.escape(series)} (\S+)$", exercised_metrics, re.M)
        assert match, f"{series} missing from:\n{exercised_metrics}"
        return float(match.group(1))

    assert value('sessionstream_connections{delivery="native",transport="sse"}') == 1
    assert value('sessionstream_connections{delivery="native",transport="websocket"}') == 2
    assert value('sessionstream_rejections_total{kind="per_session"}') == 1
    for outcome in ("exact", "gap", "reset"):
        assert value(f'sessionstream_resumes_total{{outcome="{outcome}"}}') >= 1, outcome
    assert value("sessionstream_degraded") == 0


def redis_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "redis.sh"), *args], capture_output=True, text=True
    )


def test_metrics_with_redis_pass_promtool_lint() -> None:
    # Stopped again only if started here: the shared server may belong to a fixture.
    was_running = redis_sh("status").returncode == 0
    started = redis_sh("start")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        env = {
            "SESSIONSTREAM_REDIS_URL": redis_sh("url").stdout.strip(),
            "SESSIONSTREAM_REDIS_KEY_PREFIX": "metrics-" + session_id("p"),
        }
        with stream_app_server(env) as server:
            text = httpx.get(server.url + "/metrics", timeout=5).text
    finally:
        if not was_running:
            redis_sh("stop")
    assert 'sessionstream_component_degraded{component="redis"} 0.0' in text, text
    result = promtool("check", "metrics", stdin=text.encode())
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result


def test_alert_rules_pass_promtool() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"SUCCESS" in result.stdout


@pytest.mark.parametrize("path", [DASHBOARD, ALERTS], ids=lambda p: Path(p).name)
def test_dashboard_and_alerts_name_only_exported_series(exercised_metrics: str, path: Path) -> None:
    text = path.read_text()
    if path.suffix == ".json":
        json.loads(text)  # a dashboard Grafana can import
    names = referenced_names(text)
    assert names, f"{path} names no sessionstream series"
    unknown = names - exported_names(exercised_metrics) - KAFKA_ONLY
    assert not unknown, f"{path.name} uses series no server exports: {sorted(unknown)}"


def test_kafka_only_series_are_documented() -> None:
    doc = DEPLOY_DOC.read_text()
    for name in KAFKA_ONLY:
        assert name in doc, f"{name} is not described in {DEPLOY_DOC}"
