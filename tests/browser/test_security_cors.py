"""CORS in Chromium: a page of a listed origin reads the stream with credentials, a page
of another origin cannot; the demo pages keep the session id out of every URL."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext

from tests.integration.support import ServerProcess

from .support import DemoServer

pytestmark = pytest.mark.browser

PAGE = b"<!doctype html><title>other origin</title><p>another site</p>"

READ_STREAM = """async (target) => {
  const result = { welcome: null, error: false, fetched: null };
  await new Promise((resolve) => {
    const source = new EventSource(target + "/stream/sse", { withCredentials: true });
    source.addEventListener("welcome", (e) => {
      result.welcome = JSON.parse(e.data); source.close(); resolve();
    });
    source.onerror = () => { result.error = true; source.close(); resolve(); };
    setTimeout(resolve, 5000);
  });
  try {
    const r = await fetch(target + "/stream/session", { credentials: "include" });
    result.fetched = (await r.json()).session_id || null;
  } catch (_) { result.fetched = "blocked"; }
  return result;
}"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def static_site() -> Iterator[Callable[[], str]]:
    """Tiny static servers on other ports: other origins than the demo's."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start() -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_only_a_listed_origin_reads_the_stream(
    serve: Callable[..., DemoServer],
    static_site: Callable[[], str],
    new_user: Callable[[str], BrowserContext],
) -> None:
    friend, stranger = static_site(), static_site()
    demo = serve(SESSIONSTREAM_CORS_ALLOWED_ORIGINS=friend)
    results = {}
    for origin in (friend, stranger):
        page = new_user(origin).new_page()
        page.goto(origin + "/")
        results[origin] = page.evaluate(READ_STREAM, demo.url)
    assert results[friend]["welcome"] is not None and not results[friend]["error"], results
    assert results[friend]["fetched"] == results[friend]["welcome"]["session_id"]
    assert results[stranger]["welcome"] is None and results[stranger]["error"]
    assert results[stranger]["fetched"] == "blocked"


def test_demo_pages_put_no_session_id_in_urls(
    demo_server: DemoServer, new_user: Callable[[str], BrowserContext]
) -> None:
    context = new_user(demo_server.url)
    urls: list[str] = []
    context.on("request", lambda request: urls.append(request.url))
    page = context.new_page()
    page.goto("/crawl")
    sid = page.evaluate("client.ready")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/crawls")):
        page.locator("#crawl-form button").first.click()
    page.wait_for_timeout(500)
    assert any("/stream/sse" in u for u in urls)
    assert sid and not [u for u in urls if sid in u or "session_id=" in u]
    assert page.evaluate("Object.keys(localStorage)") == []


def test_js_client_sessions_leave_no_id_in_the_access_log(
    delivery: str, new_user: Callable[[str], BrowserContext]
) -> None:
    """The demo under ``sessionstream serve`` with the access log on: pages stream over SSE
    and WebSocket with the cookie, and no log line carries the session id."""
    server = ServerProcess(
        "examples.demo.app:app",
        {"DEMO_AGENT_TOKEN_DELAY": "0.005", "DEMO_CRAWL_STEP_DELAY": "0.02"},
        delivery=delivery,
        launcher=("sessionstream", "serve"),
        server_args=["--log-level", "info", "--access-log"],
    ).start()
    try:
        context = new_user(server.url)
        chat = context.new_page()
        chat.goto("/chat")
        sid = chat.evaluate("client.ready")
        crawl = context.new_page()
        crawl.goto("/crawl")
        assert crawl.evaluate("client.ready") == sid  # one cookie, one session
        crawl.locator("#crawl-form button").first.click()
        crawl.wait_for_timeout(1500)
        chat.close()  # the page-hide beacon
        crawl.wait_for_timeout(500)
        log = server.log()
        assert "GET /stream/session" in log and "POST /api/crawls" in log  # logging is on
        assert "/connections/" in log and "WebSocket /stream/ws" in log
        assert sid not in log
    finally:
        server.stop()
