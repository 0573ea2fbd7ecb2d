"""What each part of the web layer needs of the hub, as Protocols.

:class:`~sessionstream.fastapi.hub.StreamHub` is the facade that builds the routes, so the
routes cannot name it without importing their own builder. They name one of these
contracts instead, which ``StreamHub`` satisfies structurally; each lists what its users
call, and nothing here imports the facade. The hook signatures live here for the same
reason: the facade, the registries and the routes all share them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sessionstream._core import LifecycleEvent

if TYPE_CHECKING:
    import asyncio

    from starlette.requests import Request

    from sessionstream._core import Connection, ConnectionManager, Hub, SessionStore
    from sessionstream.config import Policy, StreamConfig
    from sessionstream.fastapi.delivery import LoopWaker, Slot
    from sessionstream.fastapi.native import NativeDelivery
    from sessionstream.fastapi.rate_limit import RateLimits
    from sessionstream.fastapi.runtime import HubState
    from sessionstream.fastapi.session import StreamSession
    from sessionstream.payload import Publishable

Authorizer = Callable[["StreamSession", str], "bool | Awaitable[bool]"]
HealthAuthorizer = Callable[["Request"], "bool | Awaitable[bool]"]
LifecycleListener = Callable[[LifecycleEvent], None]
HealthSection = Callable[[], dict[str, Any]]
# A message handler as the routes see it: called with its MessageContext and the message.
AnyMessageHandler = Callable[..., Awaitable[Any]]


class Configured(Protocol):
    @property
    def config(self) -> StreamConfig: ...


class LoggedHub(Configured, Protocol):
    """What the connection log needs: the config and the lifecycle events."""

    def on_lifecycle(self, listener: LifecycleListener) -> LifecycleListener: ...


class HandlerHub(Configured, Protocol):
    """What a message handler may use through ``MessageContext.hub``."""

    @property
    def manager(self) -> ConnectionManager: ...
    @property
    def store(self) -> SessionStore: ...
    def publish(
        self, channel: str, data: Publishable, event: str = ..., *, json: bool | None = ...
    ) -> str: ...
    def send_personal(
        self, session_id: str, data: Publishable, event: str = ..., *, json: bool | None = ...
    ) -> str: ...
    def subscriber_count(self, channel: str) -> int: ...


class StreamHost(HandlerHub, Protocol):
    """What the SSE and WebSocket routes need to open, deliver and release a stream."""

    @property
    def allowed_origins(self) -> frozenset[str]: ...
    @property
    def rate_limits(self) -> RateLimits: ...
    @property
    def native_delivery(self) -> NativeDelivery | None: ...
    @property
    def message_types(self) -> list[str]: ...
    async def authorize_channels(
        self, session: StreamSession, channels: Iterable[str]
    ) -> list[str]: ...
    def delivery(self) -> LoopWaker: ...
    def handoff_for(self, scope: Mapping[str, Any]) -> Any | None: ...
    async def open_connection(
        self,
        session: StreamSession,
        channels: list[str],
        *,
        last_event_id: str | None,
        framing: Literal["sse", "websocket"],
        policy: Policy,
        native: bool = ...,
    ) -> Connection: ...
    def release(self, delivery: LoopWaker, slot: Slot) -> None: ...
    def handler_for(self, message_type: str) -> AnyMessageHandler | None: ...
    def track_handler(self, task: asyncio.Task[None]) -> None: ...


class HealthHost(Configured, Protocol):
    """What ``/health`` and ``/metrics`` read."""

    @property
    def state(self) -> HubState: ...
    @property
    def manager(self) -> ConnectionManager: ...
    @property
    def native(self) -> Hub: ...
    @property
    def native_delivery(self) -> NativeDelivery | None: ...
    @property
    def health_authorize(self) -> HealthAuthorizer | None: ...
    def health_sections(self) -> dict[str, HealthSection]: ...
    def delivery_counts(self) -> dict[str, dict[str, int]]: ...
    def delivery_status(self) -> dict[str, Any]: ...
    def rates(self) -> dict[str, float]: ...
    def recent_incidents(self) -> dict[str, float]: ...


class RoutedHub(StreamHost, HealthHost, Protocol):
    """Everything the hub's router serves: streams, health, the session routes and the
    lifespan."""

    def lifespan(self, app: Any) -> AbstractAsyncContextManager[dict[str, Any]]: ...
    def disconnect_channel(self, session_id: str, channel: str) -> int: ...
    def close_connection(self, session_id: str, connection_id: int) -> bool: ...
    def cleanup_session(self, session_id: str) -> dict[str, int | bool]: ...


__all__ = [
    "AnyMessageHandler",
    "Authorizer",
    "Configured",
    "HandlerHub",
    "HealthAuthorizer",
    "HealthHost",
    "HealthSection",
    "LifecycleListener",
    "LoggedHub",
    "RoutedHub",
    "StreamHost",
]
