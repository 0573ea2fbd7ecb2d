"""Pages reconnect by themselves: after a server restart, a dropped connection, and an
offline spell. Every page shows the ids of the events it received; none may repeat."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .support import (
    DemoServer,
    DroppingProxy,
    assert_no_duplicates,
    badge,
    epoch_of,
    expect_state,
    received,
    send_chat,
    shown_event_ids,
    states,
    wait_until,
)

pytestmark = pytest.mark.browser


def start_crawl(page: Page, pages: int) -> str:
    page.fill("#crawl-pages", str(pages))
    page.click("#start-crawl")
    row = page.locator('.crawl[data-status="running"]').first
    expect(row).to_be_visible()
    crawl_id = row.get_attribute("data-crawl-id")
    assert crawl_id
    return crawl_id


def pages_done(page: Page, crawl_id: str) -> int:
    value = page.locator(f'.crawl[data-crawl-id="{crawl_id}"]').get_attribute("data-pages-done")
    return int(value or 0)


def start_slow_reply(page: Page, text: str) -> str:
    send_chat(page, text)
    reply = page.locator('.msg.assistant[data-streaming="true"]')
    expect(reply).to_have_count(1)
    turn = reply.get_attribute("data-turn")
    assert turn
    wait_until(lambda: len(received(page, "chat.token")) >= 3, what="the reply to stream")
    return turn


def check_crawl_exact(page: Page, crawl_id: str, size: int) -> None:
    """Every step of the crawl reached the page exactly once, in order."""
    row = page.locator(f'.crawl[data-crawl-id="{crawl_id}"]')
    try:
        expect(row).to_have_attribute("data-status", "done", timeout=30_000)
    except AssertionError as exc:
        raise AssertionError(f"crawl not done; states: {states(page)}") from exc
    expect(row.locator(".percent")).to_have_text("100%")
    steps = [
        e["data"]["pages_done"]
        for e in received(page, "progress")
        if e["data"]["crawl_id"] == crawl_id
    ]
    assert steps == list(range(size + 1)), f"missing or repeated steps: {steps}"


def check_reply_exact(page: Page, turn: str) -> None:
    """Every token of the reply reached the page exactly once, in order."""
    reply = page.locator(f'.msg.assistant[data-turn="{turn}"]')
    expect(reply).to_have_attribute("data-complete", "true", timeout=30_000)
    done = [e["data"]["text"] for e in received(page, "chat.done") if e["data"]["turn"] == turn]
    assert len(done) == 1
    tokens = [e["data"]["token"] for e in received(page, "chat.token") if e["data"]["turn"] == turn]
    assert "".join(tokens) == done[0]
    expect(reply).to_have_text(done[0])


def states_since(page: Page, index: int) -> list[dict[str, Any]]:
    return states(page)[index:]


def check_resumed_exactly(page: Page, since: int, reason: str) -> None:
    """After ``since``, the page lost its stream for ``reason``, then resumed exactly."""
    later = states_since(page, since)
    lost = [i for i, s in enumerate(later) if s["reason"] == reason]
    assert lost, f"the page never noticed ({reason}): {later}"
    reopened = [s for s in later[lost[0] :] if s["state"] == "open"]
    assert reopened, later
    assert reopened[0]["resume"] == "exact", later
    assert [s for s in later if s["state"] == "failed"] == []
    expect(page.locator("#stream-notice")).to_be_hidden()


def test_server_restart_mid_stream(
    demo_server: DemoServer,
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    user = new_user(demo_server.url)
    dashboard, chat, crawl = (
        open_tabs(user, 1, path)[0] for path in ("/dashboard", "/chat", "/crawl")
    )
    pages = {"dashboard": dashboard, "chat": chat, "crawl": crawl}
    for page in pages.values():
        expect_state(page, "open")

    send_chat(chat, "hello before the restart")
    expect(chat.locator(".msg.assistant").last).to_have_attribute("data-complete", "true")
    crawl_id = start_crawl(crawl, 200)
    wait_until(lambda: pages_done(crawl, crawl_id) >= 3, what="the crawl to progress")
    wait_until(lambda: len(received(dashboard, "stats")) >= 2, what="dashboard updates")
    before = {name: [e["id"] for e in received(page)] for name, page in pages.items()}
    old_epochs = {epoch_of(i) for ids in before.values() for i in ids}
    assert len(old_epochs) == 1
    marks = {name: len(states(page)) for name, page in pages.items()}

    demo_server.restart()

    for name, page in pages.items():
        later = states_since(page, marks[name])
        assert any(s["reason"] == "shutdown" for s in later), f"{name}: {later}"
        expect_state(page, "open", timeout=20_000)
        notice = page.locator("#stream-notice")
        expect(notice).to_be_visible()
        expect(notice).to_have_attribute("data-kind", "reset")
        expect(notice).to_have_attribute("data-reason", "unknown_epoch")
        expect(notice).to_contain_text("Stream reset")

    # The pages carry on with the new server process.
    wait_until(
        lambda: any(epoch_of(e["id"]) not in old_epochs for e in received(dashboard, "stats")),
        what="dashboard updates from the new server",
    )
    send_chat(chat, "hello after the restart")
    last_reply = chat.locator(".msg.assistant").last
    expect(last_reply).to_contain_text("You said: 'hello after the restart'.", timeout=10_000)
    expect(last_reply).to_have_attribute("data-complete", "true")
    # The crawl died with the old process: the page says so instead of hanging at n%.
    lost = crawl.locator(f'.crawl[data-crawl-id="{crawl_id}"]')
    expect(lost).to_have_attribute("data-status", "lost")
    expect(lost).to_contain_text("the server restarted")
    for name, page in pages.items():
        screenshot(page, name)
    new_crawl = start_crawl(crawl, 20)
    expect(crawl.locator(f'.crawl[data-crawl-id="{new_crawl}"]')).to_have_attribute(
        "data-status", "done", timeout=15_000
    )

    for name, page in pages.items():
        ids = [e["id"] for e in received(page)]
        assert_no_duplicates(ids)
        assert_no_duplicates(shown_event_ids(page))
        assert ids[: len(before[name])] == before[name], f"{name}: history rewritten"
        # The old process's events, then the new one's: never an old event after a new one.
        epochs = [epoch_of(i) in old_epochs for i in ids]
        switch = epochs.index(False) if False in epochs else len(epochs)
        assert switch < len(ids), f"{name} received nothing from the new server"
        assert all(epochs[:switch]) and not any(epochs[switch:]), f"{name}: epochs interleave"
        assert [
            s for s in states(page) if s["state"] == "failed" and s["reason"] != "forbidden_channel"
        ] == []
        expect(badge(page)).to_have_attribute("data-state", "open")


def test_plain_drop_resumes_exactly(
    demo_server: DemoServer,
    proxy_to: Callable[..., DroppingProxy],
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    """The connections drop (no restart): the pages resume with no missing and no
    duplicate event."""
    proxy = proxy_to(demo_server)
    user = new_user(proxy.url)
    chat, crawl = open_tabs(user, 1, "/chat") + open_tabs(user, 1, "/crawl")
    for page in (chat, crawl):
        expect_state(page, "open")
    size = 120
    crawl_id = start_crawl(crawl, size)
    wait_until(lambda: pages_done(crawl, crawl_id) >= 5, what="the crawl to progress")
    turn = start_slow_reply(chat, "/slow tell me a long story")
    resumes_before = demo_server.health()["stream"]["resumes_exact"]
    marks = {page: len(states(page)) for page in (chat, crawl)}

    assert proxy.drop() >= 2  # both streams cut, mid-crawl and mid-reply
    for page in (chat, crawl):
        wait_until(
            lambda page=page: any(
                s["state"] == "reconnecting" for s in states_since(page, marks[page])
            ),
            timeout=5,
            what="the page to notice the drop",
        )
    screenshot(crawl, "crawl-reconnecting")

    check_crawl_exact(crawl, crawl_id, size)
    check_reply_exact(chat, turn)
    for page in (chat, crawl):
        check_resumed_exactly(page, marks[page], "network")
        assert_no_duplicates([e["id"] for e in received(page)])
        assert_no_duplicates(shown_event_ids(page))
    assert demo_server.health()["stream"]["resumes_exact"] >= resumes_before + 2
    screenshot(crawl, "crawl")
    screenshot(chat, "chat")


def test_network_offline_then_back(
    demo_server: DemoServer,
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    """The browser goes offline for a while (Playwright offline mode): the pages say so,
    and resume cleanly when the network is back."""
    user = new_user(demo_server.url)
    chat, crawl = open_tabs(user, 1, "/chat") + open_tabs(user, 1, "/crawl")
    for page in (chat, crawl):
        expect_state(page, "open")
    size = 120
    crawl_id = start_crawl(crawl, size)
    wait_until(lambda: pages_done(crawl, crawl_id) >= 5, what="the crawl to progress")
    turn = start_slow_reply(chat, "/slow tell me a long story")
    marks = {page: len(states(page)) for page in (chat, crawl)}

    user.set_offline(True)
    for page in (chat, crawl):
        expect_state(page, "offline")
        expect(badge(page)).to_contain_text("offline, waiting for the network")
    # The pages let their connections go; the server keeps publishing meanwhile.
    wait_until(lambda: demo_server.active_connections() == 0, timeout=5, what="connections gone")
    at_drop = pages_done(crawl, crawl_id)
    screenshot(crawl, "crawl-offline")
    screenshot(chat, "chat-offline")
    time.sleep(1.5)
    assert pages_done(crawl, crawl_id) == at_drop, "events arrived while offline"

    user.set_offline(False)
    for page in (chat, crawl):
        expect_state(page, "open")
    check_crawl_exact(crawl, crawl_id, size)
    check_reply_exact(chat, turn)
    for page in (chat, crawl):
        check_resumed_exactly(page, marks[page], "offline")
        assert_no_duplicates([e["id"] for e in received(page)])
    screenshot(crawl, "crawl-back-online")
