"""Which channels a session may subscribe to: the rule every stream path applies."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sessionstream._core import is_foreign_private_channel, private_channel
from sessionstream.fastapi.errors import StreamHTTPError

if TYPE_CHECKING:
    from sessionstream.fastapi.contracts import Authorizer
    from sessionstream.fastapi.session import StreamSession

MAX_CHANNELS_PER_REQUEST = 64


class ChannelForbiddenError(StreamHTTPError):
    def __init__(self, channel: str, why: str) -> None:
        super().__init__(
            403, "forbidden_channel", f"channel {channel!r}: {why}", extra={"channel": channel}
        )
        self.channel = channel


async def authorize_channels(
    session: StreamSession, channels: Iterable[str], authorize: Authorizer | None
) -> list[str]:
    """Deduplicate and authorize requested channels; raise ``ChannelForbiddenError``.

    The session's own private channel is dropped from the result (every connection is
    subscribed to it anyway); another session's is refused whatever ``authorize`` says.
    """
    own = private_channel(session.id)
    result: list[str] = []
    seen: set[str] = set()
    for channel in channels:
        if channel in seen or channel == own:
            continue
        seen.add(channel)
        if len(seen) > MAX_CHANNELS_PER_REQUEST:
            raise StreamHTTPError(
                400,
                "too_many_channels",
                f"at most {MAX_CHANNELS_PER_REQUEST} channels per request",
            )
        if is_foreign_private_channel(channel, session.id):
            raise ChannelForbiddenError(channel, "another session's private channel")
        if authorize is not None:
            allowed = authorize(session, channel)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                raise ChannelForbiddenError(channel, "not authorized for this session")
        result.append(channel)
    return result
