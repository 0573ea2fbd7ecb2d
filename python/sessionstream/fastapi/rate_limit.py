"""Token buckets: per WebSocket connection, and keyed by client address or session.

A client that exceeds a bucket is refused until a token is back: HTTP 429 with
``Retry-After``, WebSocket close 1013 naming the seconds, or (client messages on an open
WebSocket) an error frame. Keyed buckets are bounded in number: a full bucket is the same
as no bucket, so idle keys are dropped first, and past ``max_keys`` the least recently
used key goes, so requests from ever new addresses cannot grow memory without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Literal

from fastapi import Request

from sessionstream.fastapi.errors import StreamHTTPError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sessionstream.config import StreamConfig
    from sessionstream.fastapi.session import StreamSession

RateKey = Literal["session", "ip"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. Runs on one event loop."""

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token; False when none is left (the caller refuses the message)."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def retry_after(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self._tokens) / self.rate)


class KeyedBuckets:
    """One token bucket per key (an address, a session id), at most ``max_keys`` of them.

    Thread-safe: a lock guards the table (a hub may serve several event loops).
    ``take(key)`` returns 0.0 when a token was spent, else the seconds until one is back.
    """

    def __init__(self, name: str, rate: float, burst: int, max_keys: int) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError(
                f"rate limit {name!r}: rate={rate!r} must be > 0, burst={burst!r} >= 1,"
                f" max_keys={max_keys!r} >= 1"
            )
        self.name = name
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        # A bucket idle this long has refilled completely: dropping it changes nothing.
        self._full_after = self.burst / self.rate
        # key -> [tokens, stamp], least recently used first.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                bucket = [self.burst, now]
                self._buckets[key] = bucket
            else:
                self._buckets.move_to_end(key)
                bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return 0.0
            return (1.0 - bucket[0]) / self.rate

    def _make_room(self, now: float) -> None:
        buckets = self._buckets
        # Oldest first: every idle (refilled) bucket at the front goes, then, if the table
        # is still full, the least recently used one, whatever its state.
        while buckets:
            key, (_, stamp) = next(iter(buckets.items()))
            if now - stamp < self._full_after and len(buckets) < self.max_keys:
                return
            del buckets[key]


def retry_after_header(seconds: float) -> int:
    """Whole seconds for ``Retry-After`` (at least 1: 0 would invite an instant retry)."""
    return max(1, math.ceil(seconds))


def rate_limited_error(what: str, limit: KeyedBuckets, seconds: float) -> StreamHTTPError:
    retry = retry_after_header(seconds)
    return StreamHTTPError(
        429,
        "rate_limited",
        f"too many {what} (limit {limit.rate:g}/s, burst {limit.burst:g}); retry after {retry} s",
        headers={"Retry-After": str(retry)},
        extra={"limit": limit.name, "retry_after": retry},
    )


class RateLimits:
    """The hub's keyed limits: new connections per address and per session, client
    WebSocket messages per session, and the buckets of :meth:`dependency` routes."""

    def __init__(self, config: StreamConfig) -> None:
        self.max_keys = config.rate_limit_max_keys
        self.connect_ip = self._make(
            "connect_per_ip", config.connect_rate_per_ip, config.connect_burst_per_ip
        )
        self.connect_session = self._make(
            "connect_per_session",
            config.connect_rate_per_session,
            config.connect_burst_per_session,
        )
        self.ws_session_messages = self._make(
            "ws_messages_per_session",
            config.ws_session_messages_per_second,
            config.ws_session_message_burst,
        )
        self._routes: dict[str, KeyedBuckets] = {}

    def _make(self, name: str, rate: float, burst: int) -> KeyedBuckets | None:
        return KeyedBuckets(name, rate, burst, self.max_keys) if rate > 0 else None

    def check_connect(self, session: StreamSession) -> None:
        """Spend a connection token of the address and the session; raise a 429
        :class:`StreamHTTPError` when either is empty."""
        if self.connect_ip is not None:
            wait = self.connect_ip.take(session.ip)
            if wait:
                raise rate_limited_error("new connections from this address", self.connect_ip, wait)
        # A client without an id gets a new one each time: only its address can limit it.
        if self.connect_session is not None and not session.generated:
            wait = self.connect_session.take(session.id)
            if wait:
                raise rate_limited_error(
                    "new connections for this session", self.connect_session, wait
                )

    def take_session_message(self, session_id: str) -> float:
        """0.0, or the seconds until the session may send its next WebSocket message."""
        if self.ws_session_messages is None:
            return 0.0
        return self.ws_session_messages.take(session_id)

    def dependency(
        self,
        get_session: Callable[[Request], StreamSession],
        rate: float,
        burst: int,
        key: RateKey,
        name: str | None,
    ) -> Callable[[Request], Awaitable[None]]:
        limit_name = name or f"route_{len(self._routes)}"
        if limit_name in self._routes:
            raise ValueError(f"a rate limit named {limit_name!r} exists already; pick another name")
        if key not in ("session", "ip"):
            raise ValueError(f"rate limit key={key!r}: must be 'session' or 'ip'")
        buckets = KeyedBuckets(limit_name, rate, burst, self.max_keys)
        self._routes[limit_name] = buckets

        async def rate_limit(request: Request) -> None:
            session = get_session(request)
            use_ip = key == "ip" or session.generated
            wait = buckets.take(("ip:" + session.ip) if use_ip else session.id)
            if wait:
                what = "requests from this address" if use_ip else "requests for this session"
                raise rate_limited_error(what, buckets, wait)

        return rate_limit
