"""Simulated crawls that publish progress to ``crawl:<id>:progress`` (seed 001).

Each crawl belongs to the browser session that started it. Isolation does not rest on
filtering events in the browser: the app's ``authorize`` hook lets a session subscribe to
a crawl channel only if it owns that crawl, so another session's progress never reaches
it. Progress is computed from the crawl's own counters and can never exceed 100%.

Ownership is also written to the session store, so with Redis configured
(``SESSIONSTREAM_REDIS_URL``) the progress a crawl publishes on one node streams to its
owner on any node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass, field

from sessionstream import ClosedError, UnavailableError
from sessionstream.fastapi import StreamHub

logger = logging.getLogger("demo.crawl")

CHANNEL = re.compile(r"^crawl:([0-9a-f]{12}):progress$")
MAX_ACTIVE_PER_SESSION = 10


def channel_of(crawl_id: str) -> str:
    return f"crawl:{crawl_id}:progress"


def _owner_key(crawl_id: str) -> str:
    return f"crawl:{crawl_id}"


@dataclass
class Crawl:
    id: str
    session_id: str
    url: str
    pages: int
    created: float = field(default_factory=time.time)
    done_pages: int = 0
    status: str = "running"  # running, done, cancelled

    @property
    def percent(self) -> int:
        return min(100, (100 * self.done_pages) // self.pages)

    def public(self) -> dict[str, object]:
        data = asdict(self)
        del data["session_id"]
        data["percent"] = self.percent
        data["channel"] = channel_of(self.id)
        return data


class CrawlLimitError(Exception):
    pass


class CrawlRegistry:
    """Crawls by id, their owners, and the tasks that run them."""

    def __init__(self, hub: StreamHub, *, step_delay: float = 0.2) -> None:
        self.hub = hub
        self.step_delay = step_delay
        self._crawls: dict[str, Crawl] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def owner(self, crawl_id: str) -> str | None:
        crawl = self._crawls.get(crawl_id)
        return crawl.session_id if crawl else None

    def owns_channel(self, session_id: str, channel: str) -> bool:
        match = CHANNEL.match(channel)
        if match is None:
            return False
        crawl_id = match.group(1)
        if self.owner(crawl_id) == session_id:
            return True
        # Started through another node: the shared store knows.
        return self.hub.store.get(session_id, _owner_key(crawl_id)) is not None

    def of_session(self, session_id: str) -> list[Crawl]:
        return [c for c in self._crawls.values() if c.session_id == session_id]

    def start(self, session_id: str, url: str, pages: int) -> Crawl:
        active = sum(1 for c in self.of_session(session_id) if c.status == "running")
        if active >= MAX_ACTIVE_PER_SESSION:
            raise CrawlLimitError(
                f"{active} crawls are running for this session (max {MAX_ACTIVE_PER_SESSION})"
            )
        crawl = Crawl(id=secrets.token_hex(6), session_id=session_id, url=url, pages=pages)
        self.hub.store.set(session_id, _owner_key(crawl.id), url)
        self._crawls[crawl.id] = crawl
        task = asyncio.create_task(self._run(crawl), name=f"crawl-{crawl.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return crawl

    async def _run(self, crawl: Crawl) -> None:
        channel = channel_of(crawl.id)
        try:
            self.hub.publish(channel, self._progress(crawl), event="progress")
            while crawl.done_pages < crawl.pages:
                await asyncio.sleep(self.step_delay)
                crawl.done_pages += 1
                self.hub.publish(channel, self._progress(crawl), event="progress")
            crawl.status = "done"
            self.hub.publish(channel, self._progress(crawl), event="done")
        except asyncio.CancelledError:
            crawl.status = "cancelled"
            raise
        except (ClosedError, UnavailableError):
            # Shutting down (or Redis out of reach): progress can no longer be published.
            crawl.status = "cancelled"

    @staticmethod
    def _progress(crawl: Crawl) -> dict[str, object]:
        return {
            "crawl_id": crawl.id,
            "url": crawl.url,
            "pages_done": crawl.done_pages,
            "pages": crawl.pages,
            "percent": crawl.percent,
            "status": crawl.status,
        }

    def forget_session(self, session_id: str) -> int:
        """Cancel and forget every crawl of a session (session clean-up)."""
        crawls = self.of_session(session_id)
        for crawl in crawls:
            for task in self._tasks:
                if task.get_name() == f"crawl-{crawl.id}":
                    task.cancel()
            del self._crawls[crawl.id]
        return len(crawls)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
