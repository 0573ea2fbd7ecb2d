"""The pytest plugin: servers for the user's app, isolated sessions, browser contexts.

Enabled by the ``pytest11`` entry point when sessionstream is installed with the
``[testing]`` extra, or with ``-p sessionstream.testing.plugin``. Fixture and option
names are prefixed so they never clash with pytest-playwright's (``browser``,
``context``, ``page``, ``--browser``, ``--headed``, ``--browser-channel``), whose browser
and options are reused when it is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from .clients import SessionClient
from .server import DELIVERIES, Delivery, StreamServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

BOTH_MARKER = "sessionstream_both_deliveries"
_servers_key = pytest.StashKey[list[StreamServer]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sessionstream")
    group.addoption(
        "--sessionstream-app",
        default=None,
        help="default ASGI app for stream_server, as module:attribute",
    )
    group.addoption(
        "--sessionstream-delivery",
        choices=[*DELIVERIES, "both"],
        default=None,
        help="delivery of stream_server: native (default), python, or both (every test twice)",
    )
    parser.addini("sessionstream_app", "default ASGI app for stream_server (module:attribute)")
    parser.addini("sessionstream_delivery", "native (default), python or both", default="native")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{BOTH_MARKER}: run the test under native delivery and under the Python fallback",
    )


def _default_delivery(config: pytest.Config) -> str:
    chosen = config.getoption("--sessionstream-delivery") or config.getini("sessionstream_delivery")
    if chosen not in (*DELIVERIES, "both"):
        raise pytest.UsageError(
            f"sessionstream_delivery must be native, python or both, got {chosen!r}"
        )
    return str(chosen)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_delivery" not in metafunc.fixturenames:
        return
    chosen = _default_delivery(metafunc.config)
    both = chosen == "both" or metafunc.definition.get_closest_marker(BOTH_MARKER) is not None
    metafunc.parametrize("stream_delivery", list(DELIVERIES) if both else [chosen], indirect=True)


@pytest.fixture
def stream_delivery(request: pytest.FixtureRequest) -> Delivery:
    """``native`` or ``python``: the delivery this run of the test uses."""
    return getattr(request, "param", "native")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # A failing test shows what its servers printed, next to its own output.
    if report.failed and report.when in ("call", "setup"):
        for server in item.stash.get(_servers_key, []):
            report.sections.append((f"sessionstream server {server.url} log", server.log()))
    return report


@pytest.fixture
def stream_server(
    request: pytest.FixtureRequest, stream_delivery: Delivery
) -> Iterator[Callable[..., StreamServer]]:
    """Start the app under a real server on a free port: ``stream_server(app="pkg:app",
    delivery=..., env={...}, args=[...])``. Every server is stopped after the test."""
    servers: list[StreamServer] = []
    request.node.stash[_servers_key] = servers
    default_app = request.config.getoption("--sessionstream-app") or request.config.getini(
        "sessionstream_app"
    )

    def start(
        app: str | None = None,
        *,
        delivery: Delivery | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        **options: Any,
    ) -> StreamServer:
        server = StreamServer(
            app or default_app or None,
            delivery=delivery or stream_delivery,
            env=env,
            args=args,
            cwd=options.pop("cwd", request.config.invocation_params.dir),
            **options,
        )
        servers.append(server)
        try:
            return server.start()
        except BaseException:
            server.close()
            raise

    yield start
    for server in servers:
        server.close()


def _server_url(server: StreamServer | str | None, started: list[StreamServer]) -> str:
    if isinstance(server, str):
        return server
    if server is not None:
        return server.url
    if not started:
        raise RuntimeError("start a server with stream_server() first, or pass server=")
    return started[-1].url


@pytest.fixture
def stream_sessions(request: pytest.FixtureRequest) -> Iterator[Callable[..., list[SessionClient]]]:
    """``stream_sessions(n, server=None)``: ``n`` isolated sessions (each its own session
    id) against ``server`` (default: the last one ``stream_server`` started)."""
    clients: list[SessionClient] = []

    def open_(n: int = 1, server: StreamServer | str | None = None) -> list[SessionClient]:
        if n < 1:
            raise ValueError(f"stream_sessions needs n >= 1, got {n}")
        url = _server_url(server, request.node.stash.get(_servers_key, []))
        made = [SessionClient(url) for _ in range(n)]
        clients.extend(made)
        return made

    yield open_
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def sessionstream_browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """pytest-playwright's ``browser`` when it is installed, else Debian's Chromium.

    Module scope: Playwright's sync API keeps its event loop marked as running in the
    main thread while it is open, and asyncio tests (pytest-asyncio) cannot start one
    then. A package or session scope declared in a plugin spans the whole run, so the
    browser closes with each module instead, and async tests in other modules run."""
    if request.config.pluginmanager.hasplugin("playwright"):
        yield request.getfixturevalue("browser")
        return
    pytest.importorskip("playwright.sync_api", reason="browser_sessions needs playwright")
    from .browsers import launch_chromium

    try:
        with launch_chromium(
            headed=bool(request.config.getoption("--headed", default=False)),
            channel=request.config.getoption("--browser-channel", default=None),
        ) as browser:
            yield browser
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def browser_sessions(
    request: pytest.FixtureRequest, sessionstream_browser: Browser
) -> Iterator[Callable[..., list[BrowserContext]]]:
    """``browser_sessions(n, server=None, **context_options)``: ``n`` browser contexts,
    each with its own cookie jar (so its own session), with ``base_url`` set to the server;
    ``context_options`` (``viewport=``, ``locale=``...) go to ``Browser.new_context``."""
    contexts: list[BrowserContext] = []

    def open_(
        n: int = 1, server: StreamServer | str | None = None, **context_options: Any
    ) -> list[BrowserContext]:
        url = _server_url(server, request.node.stash.get(_servers_key, []))
        made = [
            sessionstream_browser.new_context(base_url=url, **context_options) for _ in range(n)
        ]
        contexts.extend(made)
        return made

    yield open_
    for context in contexts:
        context.close()
