"""Browser sessions: one Playwright context per session (its own cookie jar, so the server
gives it its own session id).

Chromium is Debian's (``/usr/bin/chromium``, or ``SESSIONSTREAM_CHROMIUM``) unless
pytest-playwright provides the browser; no browser is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_path() -> str:
    return os.environ.get("SESSIONSTREAM_CHROMIUM", "/usr/bin/chromium")


@contextmanager
def launch_chromium(*, headed: bool = False, channel: str | None = None) -> Iterator[Browser]:
    """Chromium under Playwright: a browser ``channel`` when given, else the executable
    at ``chromium_path()``."""
    from playwright.sync_api import sync_playwright

    executable = None if channel else chromium_path()
    if executable is not None and not Path(executable).exists():
        raise FileNotFoundError(
            f"Chromium not found at {executable}: install it (Debian: apt-get install"
            " chromium) or set SESSIONSTREAM_CHROMIUM to its path"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, channel=channel, headless=not headed, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
