"""Fixtures of the browser suite: Chromium, the demo server, users and their tabs.

* The browser is the pytest plugin's (``sessionstream.testing``): Debian's Chromium driven
  by Playwright (no browser download), headless, one per test module; every context gets a fresh
  profile.
* ``serve`` / ``demo_server``: the demo app under uvicorn on a free loopback port
  (``DemoServer``, the plugin's ``StreamServer``), restartable on that port, always stopped.
* ``new_user``: an isolated user (a browser context from the plugin's ``browser_sessions``:
  its own cookies and storage, hence its own browser session). ``open_tabs``: tabs of one
  user (pages of one context).
* ``proxy_to``: a TCP proxy in front of a server that can cut every connection, or keep
  the server's side open when the browser's side goes (as some proxies do).
* ``screenshot``: saves a page under ``artifacts/browser/``.

On failure every open page is saved as ``<test>-failed-<n>.png`` and the server log as
``<test>.server.log`` in the same folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Error, Page

from tests.integration.support import delivery_modes

from .support import ARTIFACTS, DemoServer, DroppingProxy

VIEWPORT = {"width": 1280, "height": 820}

# Fast enough for a quick suite, slow enough that streams are visibly in flight.
DEMO_ENV = {
    "DEMO_AGENT_TOKEN_DELAY": "0.01",
    "DEMO_AGENT_SLOW_TOKEN_DELAY": "0.06",
    "DEMO_CRAWL_STEP_DELAY": "0.05",
    # The tests read per-session health detail, which /health hides by default.
    "SESSIONSTREAM_HEALTH_SESSIONS": "always",
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)
    return report is None or report.failed


def _artifact_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")


@pytest.fixture(autouse=True)
def _fresh_artifacts(request: pytest.FixtureRequest) -> None:
    """Remove what an earlier run of this test left in the artifacts folder."""
    name = _artifact_name(request)
    for pattern in (f"{name}-*.png", f"{name}*.server.log"):
        for path in ARTIFACTS.glob(pattern):
            path.unlink()


@pytest.fixture(scope="module", params=delivery_modes())
def delivery(request: pytest.FixtureRequest) -> str:
    """Every page runs against native delivery and against the Python fallback."""
    return str(request.param)


@pytest.fixture
def serve(request: pytest.FixtureRequest, delivery: str) -> Iterator[Callable[..., DemoServer]]:
    """Start a demo server with extra environment variables (``SESSIONSTREAM_*``...).

    A server that fails to start is closed with the others, after its log was saved."""
    servers: list[DemoServer] = []

    def start(**env: str) -> DemoServer:
        server = DemoServer({**DEMO_ENV, **env}, delivery=delivery)
        servers.append(server)
        return server.start()

    yield start
    for index, server in enumerate(servers):
        if _failed(request):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            suffix = f"-{index}" if index else ""
            path = ARTIFACTS / f"{_artifact_name(request)}{suffix}.server.log"
            path.write_text(server.log())
        server.close()


@pytest.fixture
def demo_server(serve: Callable[..., DemoServer]) -> DemoServer:
    return serve()


@pytest.fixture
def proxy_to() -> Iterator[Callable[..., DroppingProxy]]:
    """A TCP proxy in front of a server, to cut or hold connections; always closed."""
    proxies: list[DroppingProxy] = []

    def start(server: DemoServer, *, hold_upstream: bool = False) -> DroppingProxy:
        proxy = DroppingProxy(server.port, hold_upstream=hold_upstream)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


class PageErrors:
    """Uncaught JavaScript errors of every page of the test: there must be none."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))


@pytest.fixture
def new_user(
    browser_sessions: Callable[..., list[BrowserContext]], request: pytest.FixtureRequest
) -> Iterator[Callable[[str], BrowserContext]]:
    """Create an isolated user: a browser context with its own cookies and storage (one of
    the plugin's ``browser_sessions``)."""
    contexts: list[BrowserContext] = []
    errors = PageErrors()

    def create(base_url: str) -> BrowserContext:
        (context,) = browser_sessions(1, server=base_url, viewport=VIEWPORT)
        context.set_default_timeout(15_000)
        context.on("page", errors.watch)
        contexts.append(context)
        return context

    yield create
    if _failed(request):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shots = [page for context in contexts for page in context.pages if not page.is_closed()]
        for index, page in enumerate(shots):
            try:
                page.screenshot(path=ARTIFACTS / f"{_artifact_name(request)}-failed-{index}.png")
            except Error:
                pass
    for context in contexts:
        context.close()
    assert not errors.errors, f"uncaught errors in the pages: {errors.errors}"


@pytest.fixture
def open_tabs() -> Callable[[BrowserContext, int, str], list[Page]]:
    """Open ``n`` tabs of one user at ``path``; they close with the user's context."""

    def open_(context: BrowserContext, n: int, path: str) -> list[Page]:
        pages = []
        for _ in range(n):
            page = context.new_page()
            page.goto(path)
            pages.append(page)
        return pages

    return open_


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a page as ``artifacts/browser/<test>-<label>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page: Page, label: str) -> Path:
        path = ARTIFACTS / f"{_artifact_name(request)}-{label}.png"
        page.screenshot(path=path)
        return path

    return save
