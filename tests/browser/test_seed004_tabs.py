"""Seed 004 in a real browser: tabs of one user, a reply in flight, and closing tabs."""

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
    expect_state,
    health_key,
    received,
    send_chat,
    wait_until,
)

pytestmark = pytest.mark.browser


def session_of(page: Page) -> str:
    return page.evaluate("client.ready")


def reply_tokens(page: Page, turn: str) -> str:
    """The reply of ``turn`` as the page received it token by token."""
    return "".join(
        e["data"]["token"] for e in received(page, "chat.token") if e["data"]["turn"] == turn
    )


def final_reply(page: Page, turn: str) -> dict[str, Any]:
    done = [e["data"] for e in received(page, "chat.done") if e["data"]["turn"] == turn]
    assert len(done) == 1, f"chat.done of turn {turn} received {len(done)} times"
    return done[0]


def test_second_tab_during_chat_processing(
    serve: Callable[..., DemoServer],
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # A reply slow enough (about 45 tokens, 7 s) to open a tab while it is written.
    server = serve(DEMO_AGENT_SLOW_TOKEN_DELAY="0.15")
    user = new_user(server.url)
    (first,) = open_tabs(user, 1, "/chat")
    expect_state(first, "open")
    sid = session_of(first)

    send_chat(first, "/slow please take your time")
    expect(first.locator("#processing")).to_be_visible()
    streaming = first.locator('.msg.assistant[data-streaming="true"]')
    expect(streaming).to_have_count(1)
    turn = streaming.get_attribute("data-turn")
    assert turn
    health = server.health()
    assert health["websocket_metrics"]["processing_connections"] == 1

    # A second tab of the same user while the reply streams: usable at once.
    (second,) = open_tabs(user, 1, "/chat")
    expect_state(second, "open", timeout=5_000)
    assert session_of(second) == sid
    expect(second.locator("#processing")).to_be_visible()
    expect(second.locator(f'.msg.user[data-turn="{turn}"]')).to_have_text(
        "/slow please take your time"
    )
    expect(second.locator(f'.msg.assistant[data-turn="{turn}"]')).to_have_attribute(
        "data-joined", "true"
    )
    expect(first.locator("#processing")).to_be_visible()  # the first tab is still writing

    health = server.health()
    metrics = health["websocket_metrics"]
    assert metrics["pending_swaps"] == 1, metrics
    assert metrics["processing_connections"] == 1, metrics
    assert health["sessions"][health_key(sid)]["connection_count"] == 2
    screenshot(first, "first-tab-writing")
    screenshot(second, "second-tab-joined")

    # The in-flight reply completes in full, in both tabs.
    for page in (first, second):
        expect(page.locator(f'.msg.assistant[data-turn="{turn}"]')).to_have_attribute(
            "data-complete", "true", timeout=15_000
        )
    done = final_reply(first, turn)
    assert done["text"].startswith("You said: '/slow please take your time'.")
    assert done["text"].endswith("this reply still completes.")
    assert reply_tokens(first, turn) == done["text"]  # every token, once, in order
    assert final_reply(second, turn) == done
    assert done["text"].endswith(reply_tokens(second, turn))  # from where it joined
    for page in (first, second):
        expect(page.locator(f'.msg.assistant[data-turn="{turn}"]')).to_have_text(done["text"])
        assert_no_duplicates([e["id"] for e in received(page)])

    # Then the swap: the busy tab hands over to the new one, and /health shows it.
    expect_state(first, "replaced")
    expect(first.locator("#use-this-tab")).to_be_visible()
    expect_state(second, "open")

    def swapped() -> dict[str, Any] | None:
        h = server.health()
        m = h["websocket_metrics"]
        session = h["sessions"].get(health_key(sid), {})
        idle = m["pending_swaps"] == 0 and m["processing_connections"] == 0
        return h if idle and session.get("connection_count") == 1 else None

    wait_until(swapped, timeout=5, what="the swap in /health")
    screenshot(first, "first-tab-replaced")

    # The new tab chats.
    send_chat(second, "still there?")
    expect(second.locator(".msg.assistant").last).to_contain_text("You said: 'still there?'.")
    expect(second.locator(".msg.assistant").last).to_have_attribute("data-complete", "true")
    expect(second.locator("#send")).to_be_enabled()
    screenshot(second, "second-tab-chatting")

    # And the old one too, once the user takes it back.
    first.click("#use-this-tab")
    expect_state(first, "open")
    expect(first.locator(".msg.assistant").last).to_contain_text("You said: 'still there?'.")
    send_chat(first, "back in the first tab")
    expect(first.locator(".msg.assistant").last).to_contain_text(
        "You said: 'back in the first tab'.", timeout=10_000
    )
    expect(first.locator(".msg.assistant").last).to_have_attribute("data-complete", "true")
    expect_state(second, "replaced")
    assert_no_duplicates([e["id"] for e in received(first)])


# Lets a test switch one page's beacons off (``window.noBeacon = true``).
BEACON_SWITCH = """
const sendBeacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (...args) => (window.noBeacon ? true : sendBeacon(...args));
"""


def connection_ids(*pages: Page) -> set[int]:
    return {int(badge(p).get_attribute("data-connection-id") or -1) for p in pages}


@pytest.mark.parametrize("how", ["pagehide-beacon", "server-detection"])
def test_closing_a_tab_releases_its_connections(
    how: str,
    demo_server: DemoServer,
    proxy_to: Callable[..., DroppingProxy],
    new_user: Callable[[str], BrowserContext],
    open_tabs: Callable[[BrowserContext, int, str], list[Page]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    """A closed tab's connections leave /health within 2 s.

    ``pagehide-beacon``: the browser reaches the server through a proxy that keeps the
    server's side of a connection open after the browser's side closes, so the server
    can only learn from the tab's pagehide beacon. A control tab whose beacon is switched
    off shows that the proxy really hides the close.

    ``server-detection``: direct connections, beacons switched off: the server notices
    the closed connections by itself.
    """
    if how == "pagehide-beacon":
        user = new_user(proxy_to(demo_server, hold_upstream=True).url)
        user.add_init_script(BEACON_SWITCH)
    else:
        user = new_user(demo_server.url)
        user.add_init_script("navigator.sendBeacon = () => true;")
    (keeper,) = open_tabs(user, 1, "/dashboard")
    chat, crawl = open_tabs(user, 1, "/chat") + open_tabs(user, 1, "/crawl")
    for page in (keeper, chat, crawl):
        expect_state(page, "open")
    assert demo_server.active_connections() == 3

    if how == "pagehide-beacon":
        (control,) = open_tabs(user, 1, "/dashboard")
        expect_state(control, "open")
        assert demo_server.active_connections() == 4
        control.evaluate("window.noBeacon = true")
        control.close()
        time.sleep(2.0)
        assert demo_server.active_connections() == 4, "the proxy did not hide the close"

    before = demo_server.active_connections()
    closing = connection_ids(chat, crawl)
    started = time.monotonic()
    chat.close()
    crawl.close()
    wait_until(
        lambda: demo_server.active_connections() == before - 2,
        timeout=2.0,
        what="the closed tabs' connections to leave /health",
    )
    assert time.monotonic() - started < 2.0

    # The dashboard's lifecycle feed shows both connections gone.
    def disconnected() -> bool:
        stats = received(keeper, "stats")
        recent = stats[-1]["data"]["recent"] if stats else []
        return closing <= {e["connection_id"] for e in recent if e["kind"] == "disconnected"}

    wait_until(disconnected, timeout=5, what="the disconnections in the dashboard feed")
    expect(keeper.locator("#lifecycle .kind[data-kind=disconnected]").first).to_be_visible()
    screenshot(keeper, "dashboard")
