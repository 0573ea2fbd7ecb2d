"""How a session id appears in health documents and logs.

A session id is a bearer secret (it opens the session's private channel), so anything a
third party may read shows a digest of it unless ``full`` display is asked for.
"""

from __future__ import annotations

import hashlib
from typing import Literal

SessionIdDisplay = Literal["hash", "full", "none"]


def session_key(session_id: str, display: str) -> str:
    """``session_id`` itself under ``full`` display, else ``h:`` and 16 hex digits of its
    SHA-256."""
    if display == "full":
        return session_id
    return "h:" + hashlib.sha256(session_id.encode()).hexdigest()[:16]
