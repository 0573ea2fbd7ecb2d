"""Tabs of one browser in Chromium: a replaced plain EventSource stays closed (policy
``latest``), and ``failover`` hands the stream from a closed tab to a standby tab."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from .support import (
    DemoServer,
    assert_no_duplicates,
    badge,
    expect_state,
    health_key,
    received,
    sequence_of,
    states,
    wait_until,
)

pytestmark = pytest.mark.browser

# A page with nothing but a browser EventSource on the dashboard channel (stats once a
# second): what any application without the project's client does.
PLAIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>plain EventSource</title></head>
<body><pre id="log"></pre>
<script>
  window.seen = { welcomes: 0, replaced: 0, closes: [], stats: [], errors: 0 };
  const source = new EventSource("/stream/sse?channel=dashboard");
  window.source = source;
  source.addEventListener("welcome", (e) => {
    window.seen.welcomes += 1;
    window.seen.connection = JSON.parse(e.data).connection_id;
  });
  source.addEventListener("stats", (e) => window.seen.stats.push(e.lastEventId));
  source.addEventListener("close", (e) => {
    const reason = JSON.parse(e.data).reason;
    window.seen.closes.push(reason);
    if (reason === "replaced") window.seen.replaced += 1;
  });
  source.onerror = () => { window.seen.errors += 1; };
</script></body></html>
"""


def seen(page: Page) -> dict[str, Any]:
    return page.evaluate("({...window.seen, readyState: window.source.readyState})")


def test_replaced_plain_event_source_stays_closed(
    serve: Callable[..., DemoServer],
    new_user: Callable[[str], BrowserContext],
    screenshot: Callable[[Page, str], Path],
) -> None:
    server = serve(SESSIONSTREAM_SSE_POLICY="latest", SESSIONSTREAM_RETRY_MS="500")
    user = new_user(server.url)
    user.route(
        server.url + "/plain-tabs",
        lambda route: route.fulfill(status=200, content_type="text/html", body=PLAIN_PAGE),
    )
    first = user.new_page()
    first.goto("/plain-tabs")
    wait_until(lambda: seen(first)["welcomes"] == 1, what="the first tab's welcome")
    second = user.new_page()  # same context: the session cookie set by the first stream
    second.goto("/plain-tabs")
    wait_until(lambda: seen(second)["welcomes"] == 1, what="the second tab's welcome")

    # Ten seconds: with retry 500 ms a ping-pong would show many replacements.
    time.sleep(10)
    one, two = seen(first), seen(second)
    assert one["replaced"] == 1, one
    assert one["welcomes"] == 1, "the replaced tab must not come back"
    assert one["readyState"] == 2, "the replaced EventSource ends CLOSED"
    assert two["replaced"] == 0 and two["welcomes"] == 1, two
    assert two["readyState"] == 1, "the tab that took over stays open"
    assert len(two["stats"]) >= 8, "the tab that took over keeps receiving"
    assert_no_duplicates(two["stats"])

    health = server.health()
    assert health["websocket_metrics"]["total_connections_lifetime"] == 2, "2 streams opened"
    assert health["websocket_metrics"]["active_connections"] == 1
    listed = list(health["sessions"].values())
    assert [[c["id"] for c in s["connections"]] for s in listed] == [[two["connection"]]]
    screenshot(second, "second-tab")


def take_over_within(
    server: DemoServer, sid: str, connection_id: int, timeout: float
) -> dict[str, Any]:
    def active() -> dict[str, Any] | None:
        session = server.health()["sessions"].get(health_key(sid), {})
        states = [(c["id"], c["state"]) for c in session.get("connections", [])]
        return session if states == [(connection_id, "active")] else None

    return wait_until(active, timeout=timeout, what="the standby to be the active connection")


def test_failover_hands_over_between_tabs(
    serve: Callable[..., DemoServer],
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    server = serve(SESSIONSTREAM_SSE_POLICY="failover")
    user = new_user(server.url)
    (first,) = open_tabs(user, 1, "/dashboard")
    expect_state(first, "open")
    (second,) = open_tabs(user, 1, "/dashboard")
    expect_state(second, "standby")
    sid = first.evaluate("client.ready")
    assert second.evaluate("client.ready") == sid
    first_id = int(badge(first).get_attribute("data-connection-id") or -1)
    assert "takes over" in badge(second).inner_text()

    session = server.health()["sessions"][health_key(sid)]
    assert [c["state"] for c in session["connections"]] == ["active", "standby"]
    assert server.health()["websocket_metrics"]["standby_connections"] == 1
    wait_until(lambda: len(received(first, "stats")) >= 3, what="stats in the active tab")
    assert received(second, "stats") == [], "a standby tab receives nothing"
    screenshot(second, "standby")

    # Close the active tab right after an event, so that none is in flight to it.
    count = len(received(first, "stats"))
    wait_until(lambda: len(received(first, "stats")) > count, what="a fresh event")
    taken_by_first = [e["id"] for e in received(first, "stats")]
    first.close()
    started = time.monotonic()
    expect_state(second, "open", timeout=1_000)
    assert time.monotonic() - started < 1.0
    second_id = int(badge(second).get_attribute("data-connection-id") or -1)
    assert second_id != first_id
    take_over_within(server, sid, second_id, timeout=2.0)

    wait_until(lambda: len(received(second, "stats")) >= 3, what="stats in the promoted tab")
    taken_by_second = [e["id"] for e in received(second, "stats")]
    both = taken_by_first + taken_by_second
    assert_no_duplicates(both)
    # Nothing else publishes on this server: the stats events are consecutive, so a gap
    # at the hand-over would show as a missing sequence number.
    sequences = [sequence_of(i) for i in both]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), sequences
    assert [s["state"] for s in states(second)][-2:] == ["standby", "open"]

    # The app's lifecycle listener (the dashboard's feed) heard both steps.
    recent = received(second, "stats")[-1]["data"]["recent"]
    kinds = {(e["kind"], e["connection_id"], e["other_connection_id"]) for e in recent}
    assert ("standby", second_id, first_id) in kinds, recent
    assert ("promoted", second_id, first_id) in kinds, recent
    screenshot(second, "promoted")
