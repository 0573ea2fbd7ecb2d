"""How published data becomes an event payload: JSON for structures, bytes and text as given."""

from __future__ import annotations

import json as _json
from typing import Any

Publishable = (
    dict[str, Any] | list[Any] | str | bytes | bytearray | memoryview | int | float | bool | None
)


def encode_payload(data: Any, json: bool | None = None) -> tuple[str | bytes, bool]:
    """Return ``(payload, is_json)``: dict/list/number/bool/None are JSON-encoded,
    str and bytes are sent as they are. ``json`` overrides the detected flag."""
    if isinstance(data, str):
        payload: str | bytes = data
        detected = False
    elif isinstance(data, (bytes, bytearray, memoryview)):
        payload = bytes(data)
        detected = False
    elif isinstance(data, (dict, list, tuple, int, float, bool)) or data is None:
        payload = _json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        detected = True
    else:
        raise TypeError(
            f"cannot publish {type(data).__name__}: pass a dict, list, str, bytes or a JSON scalar"
        )
    return payload, detected if json is None else json
