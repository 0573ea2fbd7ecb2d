"""The pytest plugin as a user meets it: their own app and test file in a directory of
their own, run by pytest with the plugin. The app and the test are the example of
docs/testing.md, read from it, so the documented example is the one that is proven."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sessionstream.testing import (
    SessionClient,
    SSEStream,
    StreamEvent,
    StreamServer,
    assert_events,
    assert_isolated,
    assert_no_gap_no_duplicate,
    assert_resumed,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"
# Blocks the entry point (when installed) so that -p loads the plugin exactly once.
PLUGIN_ARGS = ["-p", "no:sessionstream", "-p", "sessionstream.testing.plugin"]


@pytest.fixture(autouse=True)
def importable_plugin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's pytest imports sessionstream.testing from the sessionstream it finds. A
    package built before sessionstream.testing existed gets it from the source tree here,
    through a copy of the package made of links.

    Only for the tests that run pytest: pytester restores ``sys.modules`` after a test, so
    it would drop what an in-process test imported first (httpcore, on httpx's first
    request), and httpx, which keeps the first httpcore's exception classes, would then let
    a later test's httpcore timeouts through unmapped."""
    if "pytester" not in request.fixturenames:
        return
    pytester: pytest.Pytester = request.getfixturevalue("pytester")
    import sessionstream
    import sessionstream.testing

    package = Path(sessionstream.__file__).parent
    testing = Path(sessionstream.testing.__file__).parent
    if testing.parent == package:
        return
    overlay = pytester.path / "_overlay" / "sessionstream"
    overlay.mkdir(parents=True)
    for entry in package.iterdir():
        (overlay / entry.name).symlink_to(entry)
    (overlay / "testing").symlink_to(testing)
    monkeypatch.setenv("PYTHONPATH", f"{overlay.parent}:{os.environ.get('PYTHONPATH', '')}")


def doc_example() -> tuple[str, str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 2, f"docs/testing.md lost its example (python blocks: {len(blocks)})"
    return blocks[0], blocks[1]


def test_the_documented_example_passes_under_both_deliveries(pytester: pytest.Pytester) -> None:
    app, test = doc_example()
    pytester.makepyfile(chatapp=app, test_chat=test)
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "-v", timeout=120)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_two_browsers_chat_while_a_third_tab_opens?native? PASSED*"])
    result.stdout.fnmatch_lines(["*test_two_browsers_chat_while_a_third_tab_opens?python? PASSED*"])


def test_a_missing_event_fails_and_shows_what_arrived(pytester: pytest.Pytester) -> None:
    app, test = doc_example()
    expecting_more = test.replace("chat[1:])", "chat)")
    assert expecting_more != test
    pytester.makepyfile(chatapp=app, test_chat=expecting_more)
    result = pytester.runpytest_subprocess(
        *PLUGIN_ARGS, "--sessionstream-delivery", "native", timeout=120
    )
    # The marker asks for both deliveries whatever the option says.
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected 2 event(s), received 1; first difference at #0*",
            "*received:*",
            "*0: <chat id=*-* data={'text': 'hi alice', 'from': '*'}>*",
        ]
    )
    result.stdout.fnmatch_lines(["*sessionstream server http://127.0.0.1:* log*"])


def test_a_bad_app_name_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        def test_bad(stream_server):
            stream_server("no_colon_here")
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*app must name an ASGI app as 'module:attribute'*"])


def test_an_app_that_does_not_start_shows_its_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        broken="raise RuntimeError('the app is broken at import')",
        test_broken="""
        def test_broken(stream_server):
            stream_server("broken:app", delivery="python")
        """,
    )
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*server exited with*", "*the app is broken at import*"])


def test_async_tests_run_after_a_module_of_browser_tests(pytester: pytest.Pytester) -> None:
    """Playwright's sync API marks its loop as running in the main thread while the browser
    is open: an async test after it must still get its own event loop."""
    if not Path(os.environ.get("SESSIONSTREAM_CHROMIUM", "/usr/bin/chromium")).exists():
        pytest.skip("needs Chromium (make test installs Debian's chromium)")
    pytester.makepyfile(
        **{
            "test_a_page": """
            def test_page(browser_sessions):
                (context,) = browser_sessions(1, server="http://127.0.0.1:9")
                page = context.new_page()
                page.set_content("<p id=p>rendered</p>")
                assert page.inner_text("#p") == "rendered"
            """,
            "test_b_loop": """
            import asyncio
            import pytest

            @pytest.mark.asyncio
            async def test_loop():
                await asyncio.sleep(0)
            """,
        }
    )
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "-v", timeout=120)
    result.stdout.fnmatch_lines(
        ["*test_a_page.py::test_page PASSED*", "*test_b_loop.py::test_loop PASSED*"]
    )
    result.assert_outcomes(passed=2)


# -- the fixtures and assertions in this project's own suite -----------------------------

STREAM_APP = "tests.integration.stream_app:app"


def publish(session: SessionClient, channel: str, count: int = 1) -> list[str]:
    response = session.post("/test/publish", json={"channel": channel, "data": "x", "count": count})
    response.raise_for_status()
    return response.json()["ids"]


@pytest.mark.sessionstream_both_deliveries
def test_a_dropped_stream_resumes_exactly(
    stream_server: Callable[..., StreamServer], stream_sessions: Callable[..., list[SessionClient]]
) -> None:
    server = stream_server(STREAM_APP, cwd=ROOT)
    (user,) = stream_sessions(1)
    first = user.sse("news")
    before = publish(user, "news", 3)
    first.wait_for(3)
    first.drop()
    missed = publish(user, "news", 2)
    second = first.resume()
    later = publish(user, "news", 1)
    second.wait_for(3)
    assert second.welcome is not None and second.welcome["resume"] == "exact"
    assert_resumed(first, second, published=before + missed + later)
    assert server.health()["status"] in ("healthy", "degraded")


def test_websocket_events_name_their_channel_and_sessions_stay_apart(
    stream_server: Callable[..., StreamServer], stream_sessions: Callable[..., list[SessionClient]]
) -> None:
    stream_server(STREAM_APP, cwd=ROOT)
    alice, bob = stream_sessions(2)
    alice_ws, bob_ws = alice.websocket("room"), bob.websocket("room")
    shared = publish(alice, "room")
    private = publish(alice, alice.private_channel)
    alice_ws.wait_for(2)
    bob_ws.wait_for(1)
    assert [(e.channel, e.id) for e in alice_ws.of()] == [
        ("room", *shared),
        (alice.private_channel, *private),
    ]
    assert_events(bob_ws, [("message", "x")])
    assert_isolated([alice, bob])


def _leaked(session: SessionClient, other: SessionClient) -> None:
    stream = SSEStream.__new__(SSEStream)
    stream.events = [StreamEvent("message", "x", "a-1", other.private_channel)]
    stream._changed = threading.Condition()
    session.streams.append(stream)


def test_assert_isolated_names_the_leak() -> None:
    alice, bob = SessionClient("http://127.0.0.1:9"), SessionClient("http://127.0.0.1:9")
    _leaked(bob, alice)
    with pytest.raises(AssertionError, match=f"{bob.id} received .* of channel session:{alice.id}"):
        assert_isolated([alice, bob])


@pytest.mark.parametrize(
    ("ids", "expected", "message"),
    [
        (["e-1", "e-2", "e-2"], None, r"received more than once: \['e-2'\]"),
        (["e-1", "e-3", "e-2"], None, r"out of order: \['e-2 after e-3'\]"),
        (["e-1", "f-2"], None, r"ids of 2 epochs"),
        (["e-1", "e-3"], ["e-1", "e-2", "e-3"], r"missing \(a gap\): \['e-2'\]"),
        (["e-1", "garbage"], None, r"'garbage' is not an event id"),
    ],
)
def test_assert_no_gap_no_duplicate_refuses(
    ids: list[str], expected: list[str] | None, message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_no_gap_no_duplicate(ids, expected=expected)
    assert_no_gap_no_duplicate(sorted(set(ids) - {"garbage", "f-2"}, key=lambda i: int(i[2:])))


def test_assert_events_shows_what_arrived() -> None:
    got = [StreamEvent("chat", {"text": "hi"}, "e-1"), StreamEvent("chat", {"text": "yo"}, "e-2")]
    assert_events(got, [("chat", {"text": "hi"}), {"text": "yo"}])
    with pytest.raises(AssertionError, match=r"(?s)first difference at #1.*1: <chat id=e-2"):
        assert_events(got, ["chat", ("chat", {"text": "no"})])
