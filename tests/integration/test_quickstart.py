"""The README quickstart (examples/quickstart.py), run as a user would run it."""

from __future__ import annotations

import httpx
import pytest

from .support import SSEClient


@pytest.mark.asyncio
async def test_quickstart_publishes_to_the_browser(start_server) -> None:
    server = start_server("examples.quickstart:app")
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
        page = await client.get("/")
        assert 'new EventSource("/stream/sse?channel=news")' in page.text
        async with SSEClient(server.url, ["news"]) as stream:
            response = await client.post("/announce", params={"text": "hello, browser"})
            event_id = response.json()["id"]
            event = await stream.next()
    assert (event.id, event.event, event.json()) == (
        event_id,
        "announcement",
        {"text": "hello, browser"},
    )
