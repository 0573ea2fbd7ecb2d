"""Data published as JSON is embedded raw in WebSocket frames, so it must be JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest

import sessionstream as ss


@pytest.fixture
def hub() -> Iterator[ss.Hub]:
    hub = ss.Hub(history_max_events=8)
    yield hub
    hub.close()


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        ("{", 1),
        ("not json", 0),
        ('{"a":1} trailing', 8),
        ('"unterminated', 0),
        ("[1,]", 3),
        ("", 0),
        (json.dumps(math.nan), 0),  # Python writes NaN, which JSON does not have
        ("[" * 513 + "]" * 513, 512),
    ],
)
def test_invalid_json_is_refused_and_takes_no_id(hub: ss.Hub, data: str, offset: int) -> None:
    head = hub.head_id
    with pytest.raises(ss.InvalidArgumentError) as refused:
        hub.publish("c", data, json=True)
    assert isinstance(refused.value, ValueError)
    message = str(refused.value)
    assert message.startswith("event data is marked as JSON but is not valid JSON: ")
    assert message.endswith(f", at byte offset {offset}")
    assert hub.head_id == head


@pytest.mark.parametrize(
    "data",
    ['{"k":[1,"two",null]}', " 3.5e-2 ", '"\\ud800"', "[" * 512 + "]" * 512, '"caf\u00e9"'],
)
def test_valid_json_is_published(hub: ss.Hub, data: str) -> None:
    assert hub.publish("c", data, json=True)


def test_text_not_marked_json_is_not_checked(hub: ss.Hub) -> None:
    assert hub.publish("c", "{ not json", json=False)
