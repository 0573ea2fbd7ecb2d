"""The demo over Redis: a crawl started through one node streams its progress to its
owner through another node, and nobody else may subscribe to it there."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.conftest import DEMO_APP, DEMO_ENV
from tests.integration.support import ServerProcess, SSEClient, session_id
from tests.integration.test_seed001_isolation import follow, start_crawl

pytestmark = pytest.mark.redis


@pytest.mark.asyncio
async def test_crawl_progress_streams_through_the_other_node(
    start_node: Callable[..., ServerProcess],
) -> None:
    node_a = start_node(app=DEMO_APP, **DEMO_ENV)
    node_b = start_node(app=DEMO_APP, **DEMO_ENV)
    owner, stranger = session_id("owner"), session_id("stranger")
    crawl = await start_crawl(node_a, owner, pages=40)
    async with SSEClient(node_b.url, [crawl["channel"]], session_id=stranger) as refused:
        assert refused.status_code == 403
    async with SSEClient(
        node_b.url, [crawl["channel"]], session_id=owner, last_event_id=None
    ) as stream:
        seen = await follow(stream, crawl["id"])
    percents = [p["percent"] for p in seen]
    assert percents == sorted(percents) and percents[-1] == 100
    assert {p["crawl_id"] for p in seen} == {crawl["id"]}
