"""The server's WebSocket frames: each one a JSON array of message objects."""

from __future__ import annotations

import json
from typing import Any


def encode_frame(*objects: dict[str, Any]) -> str:
    """One server frame: every server frame is a JSON array of message objects.

    Always valid UTF-8, as a WebSocket text frame must be: a str with lone surrogates
    (JSON escapes in a client's message can spell them, and replies echo ``ref``, a
    ping's ``ts`` or channel names) is written with ``\\u`` escapes instead.
    """
    text = json.dumps(list(objects), separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return json.dumps(list(objects), separators=(",", ":"))
    return text


def error_frame(code: str, detail: str, ref: Any = None, **extra: Any) -> str:
    message: dict[str, Any] = {"type": "error", "error": code, "detail": detail}
    if ref is not None:
        message["ref"] = ref
    message.update(extra)
    return encode_frame(message)
