"""The demo pages themselves: the home page, and a dashboard with live counts and a chart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .support import DemoServer, expect_state, received, send_chat, wait_until

pytestmark = pytest.mark.browser


def tile(page: Page, key: str) -> str:
    return page.locator(f'.stat[data-key="{key}"] .value').inner_text()


def test_home_page_names_the_session(
    demo_server: DemoServer,
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    (home,) = open_tabs(new_user(demo_server.url), 1, "/")
    sid = home.evaluate("client.ready")
    expect(home.locator("#session-id")).to_have_text(sid)
    for path in ("/chat", "/crawl", "/dashboard"):
        expect(home.locator(f'.tile[href="{path}"]')).to_be_visible()
    screenshot(home, "home")


def test_dashboard_shows_live_counts_and_rate_chart(
    demo_server: DemoServer,
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    (dashboard,) = open_tabs(new_user(demo_server.url), 1, "/dashboard")
    chats = [open_tabs(new_user(demo_server.url), 1, "/chat")[0] for _ in range(2)]
    (crawl,) = open_tabs(new_user(demo_server.url), 1, "/crawl")
    for page in (dashboard, *chats, crawl):
        expect_state(page, "open")

    crawl.fill("#crawl-pages", "60")
    crawl.click("#start-crawl")
    for i, chat in enumerate(chats):
        send_chat(chat, f"hello from browser {i + 1}")

    # The tiles follow the server: four connections of four browser sessions, two chat
    # messages (plus the history requests of the two chat pages).
    expect(dashboard.locator('.stat[data-key="active_connections"] .value')).to_have_text("4")
    expect(dashboard.locator('.stat[data-key="unique_browser_sessions"] .value')).to_have_text("4")
    wait_until(lambda: int(tile(dashboard, "total_messages")) >= 4, what="client messages counted")
    health = demo_server.health()["websocket_metrics"]
    assert int(tile(dashboard, "total_messages")) <= health["total_messages"]

    # The chart draws one point per update; the rate rises above zero while events flow.
    wait_until(lambda: len(received(dashboard, "stats")) >= 4, what="four dashboard updates")
    points = dashboard.locator("#rate-chart .delivered").get_attribute("points") or ""
    values = [float(p.split(",")[1]) for p in points.split()]
    assert len(values) >= 4
    assert min(values) < max(values), "the chart is flat although events were delivered"
    assert any(e["data"]["delivered_per_second"] > 0 for e in received(dashboard, "stats"))
    expect(dashboard.locator("#rate-chart .no-data")).to_have_count(0)
    expect(dashboard.locator("#lifecycle .kind[data-kind=connected]").first).to_be_visible()
    screenshot(dashboard, "dashboard")
