"""Seed 001 in a real browser: five users crawl at once, each sees only its own progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .support import (
    DemoServer,
    assert_no_duplicates,
    expect_state,
    received,
    sequence_of,
    shown_event_ids,
)

pytestmark = pytest.mark.browser

# Records every percentage the page ever displays, so that a transient "147%" cannot hide
# between two checks.
WATCH_PERCENTS = """
window.__percentsShown = [];
new MutationObserver(() => {
  for (const node of document.querySelectorAll(".crawl .percent")) {
    const value = parseFloat(node.textContent);
    if (!Number.isNaN(value)) window.__percentsShown.push(value);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


def test_five_users_crawl_at_once(
    demo_server: DemoServer,
    new_user: Callable[[str], BrowserContext],
    screenshot: Callable[[Page, str], Path],
) -> None:
    users = 5
    # Different sizes and sites per user, so any event of another user's crawl shows.
    sizes = [40 + 9 * i for i in range(users)]
    sites = [f"https://user{i}.example.org/docs" for i in range(users)]
    pages: list[Page] = []
    for _ in range(users):
        context = new_user(demo_server.url)
        context.add_init_script(WATCH_PERCENTS)
        page = context.new_page()
        page.goto("/crawl")
        pages.append(page)
    for page in pages:
        expect_state(page, "open")

    for page, size, site in zip(pages, sizes, sites, strict=True):
        page.fill("#crawl-url", site)
        page.fill("#crawl-pages", str(size))
    crawl_ids: list[str] = []
    for page in pages:
        with page.expect_response(
            lambda r: urlparse(r.url).path == "/api/crawls" and r.request.method == "POST"
        ) as response:
            page.click("#start-crawl")
        assert response.value.status == 201
        crawl_ids.append(response.value.json()["id"])
    assert len(set(crawl_ids)) == users

    last = pages[-1].locator(f'.crawl[data-crawl-id="{crawl_ids[-1]}"]')
    expect(last).to_have_attribute("data-status", "running")
    screenshot(pages[-1], f"user{users}-in-progress")

    for i, page in enumerate(pages):
        row = page.locator(f'.crawl[data-crawl-id="{crawl_ids[i]}"]')
        expect(row).to_have_attribute("data-status", "done", timeout=20_000)
        expect(row.locator(".percent")).to_have_text("100%")
        expect(row.locator(".pages")).to_have_text(f"{sizes[i]} of {sizes[i]} pages")

    for i, page in enumerate(pages):
        # Only its own crawl on the page.
        assert page.locator(".crawl").evaluate_all("els => els.map(e => e.dataset.crawlId)") == [
            crawl_ids[i]
        ]
        events = received(page)
        assert events, "the page received no events"
        foreign = [e for e in events if e["data"].get("crawl_id") != crawl_ids[i]]
        assert foreign == [], f"user {i + 1} received another user's events"
        assert {e["data"]["url"] for e in events} == {sites[i]}
        assert {e["event"] for e in events} == {"progress", "done"}

        # Every step of its own crawl exactly once, in order, never above 100%.
        progress = [e["data"] for e in events if e["event"] == "progress"]
        assert [p["pages_done"] for p in progress] == list(range(sizes[i] + 1))
        assert all(p["pages"] == sizes[i] for p in progress)
        assert max(e["data"]["percent"] for e in events) == 100
        shown = page.evaluate("window.__percentsShown")
        assert shown and max(shown) == 100, f"user {i + 1} was shown {max(shown, default=None)}%"

        ids = [e["id"] for e in events]
        assert_no_duplicates(ids)
        assert [sequence_of(x) for x in ids] == sorted(sequence_of(x) for x in ids)
        # The event log shows the same ids, and nothing else.
        log_ids = shown_event_ids(page)
        assert log_ids == ids[::-1][: len(log_ids)]

    for i, page in enumerate(pages):
        screenshot(page, f"user{i + 1}")
