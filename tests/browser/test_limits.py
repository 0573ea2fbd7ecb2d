"""The connection limit in a real browser: an 11th page waits politely for a free slot."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .support import DemoServer, badge, expect_state, received, states, wait_until

pytestmark = pytest.mark.browser


def test_eleventh_page_waits_for_a_free_slot(
    serve: Callable[..., DemoServer],
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    server = serve(SESSIONSTREAM_MAX_CONNECTIONS="10", SESSIONSTREAM_RETRY_AFTER_SECONDS="1")
    # Ten pages of five users fill the server.
    pages: list[Page] = []
    for _ in range(5):
        pages += open_tabs(new_user(server.url), 2, "/dashboard")
    for page in pages:
        expect_state(page, "open")
    assert server.active_connections() == 10

    (eleventh,) = open_tabs(new_user(server.url), 1, "/dashboard")
    expect_state(eleventh, "busy")
    expect(badge(eleventh)).to_contain_text("server busy, retrying")
    health = server.health()
    assert health["limits"]["rejections"]["server_full"] >= 1
    assert health["stream"]["active_connections"] == 10
    screenshot(eleventh, "busy")

    # It keeps retrying without getting in, and without giving up.
    time.sleep(2.5)
    assert server.active_connections() == 10
    seen = [s["state"] for s in states(eleventh)]
    assert "open" not in seen and "failed" not in seen
    assert seen.count("busy") >= 2, seen
    assert received(eleventh) == []

    # A slot frees: the waiting page connects by itself.
    pages[0].close()
    expect_state(eleventh, "open", timeout=10_000)
    wait_until(lambda: received(eleventh, "stats"), timeout=5, what="live stats on the 11th page")
    assert server.active_connections() == 10
    screenshot(eleventh, "connected")
