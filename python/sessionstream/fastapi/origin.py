"""Which pages may open a WebSocket stream.

A browser sends the session cookie with a WebSocket handshake whatever site the page
comes from, and WebSockets have no CORS: without this check any site could open the
user's stream (cross-site WebSocket hijacking). Browsers always send ``Origin``; clients
that send none (servers, scripts) carry no ambient cookie of a user and are allowed.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def parse_origins(text: str) -> frozenset[str]:
    """``"https://a.example, https://b.example:8443"`` as normalised origins; ``*`` kept."""
    return frozenset(_normalise(o) if o != "*" else "*" for o in _split(text))


def origin_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """Allowed: no Origin, the server's own origin (its Host), or one listed (``*``: any)."""
    if origin is None:
        return True
    if "*" in allowed:
        return True
    normalised = _normalise(origin)
    if normalised in allowed:
        return True
    netloc = urlsplit(normalised).netloc
    return bool(host) and netloc == (host or "").strip().lower()


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _normalise(origin: str) -> str:
    parts = urlsplit(origin.strip().lower())
    return f"{parts.scheme}://{parts.netloc}"
