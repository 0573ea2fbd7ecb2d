"""Opening streams and the deliveries that carry them.

Python delivery has one :class:`~sessionstream.fastapi.delivery.LoopWaker` per event
loop; native delivery is the engine, used when the server hands a connection's socket
over (:data:`~sessionstream.fastapi.native.HANDOFF_EXTENSION`). Both are owned here, from
the hub's start until its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from sessionstream._core import (
    ClosedError,
    Connection,
    InvalidArgumentError,
    LimitExceededError,
    TooManyChannelsError,
)
from sessionstream.config import Policy
from sessionstream.fastapi.delivery import LoopWaker, Slot
from sessionstream.fastapi.errors import StreamHTTPError, limit_error, shutting_down_error
from sessionstream.fastapi.native import HANDOFF_EXTENSION, NativeDelivery, NativeSlot

if TYPE_CHECKING:
    from sessionstream.fastapi.runtime import HubRuntime
    from sessionstream.fastapi.session import StreamSession

logger = logging.getLogger("sessionstream")

# Fallback reasons are few; never let a stream of distinct ones grow the dict.
MAX_FALLBACK_REASONS = 32


class StreamConnections:
    def __init__(self, runtime: HubRuntime, on_lifecycle: Callable[[], None]) -> None:
        self._runtime = runtime
        self._config = runtime.config
        self._on_lifecycle = on_lifecycle
        self._deliveries: dict[asyncio.AbstractEventLoop, LoopWaker] = {}
        self._native: NativeDelivery | None = None
        self._handler_tasks: set[asyncio.Task[None]] = set()
        # Why streams fall back to Python delivery; each reason is logged once.
        self._fallback_reasons: dict[str, int] = {}

    @property
    def native(self) -> NativeDelivery | None:
        return self._native

    def start(self) -> LoopWaker:
        """The running loop's delivery, and the native engine when the config asks for it."""
        delivery = self.delivery()
        if self._config.native_delivery and self._native is None:
            self._native = NativeDelivery(self._config, delivery.notifier)
        return delivery

    def delivery(self) -> LoopWaker:
        loop = asyncio.get_running_loop()
        delivery = self._deliveries.get(loop)
        if delivery is None:
            delivery = LoopWaker(
                loop,
                heartbeat_interval=self._config.heartbeat_interval,
                on_lifecycle=self._on_lifecycle,
                on_inbound=self._drain_inbound,
            )
            self._deliveries[loop] = delivery
        return delivery

    def _drain_inbound(self) -> None:
        if self._native is not None:
            self._native.drain_inbound()

    def handoff_for(self, scope: Mapping[str, Any]) -> Any | None:
        if self._native is None or self._runtime.state != "running":
            return None
        handoff = (scope.get("extensions") or {}).get(HANDOFF_EXTENSION)
        if handoff is None:
            self._note_fallback(
                "the server offers no sessionstream.handoff extension (start it with"
                " `sessionstream serve` or uvicorn --http/--ws sessionstream.server classes)"
            )
            return None
        reason = handoff.unavailable_reason()
        if reason is not None:
            self._note_fallback(reason)
            return None
        return handoff

    def _note_fallback(self, reason: str) -> None:
        if reason not in self._fallback_reasons:
            if len(self._fallback_reasons) >= MAX_FALLBACK_REASONS:
                return
            logger.info("python delivery for a stream: %s", reason)
            self._fallback_reasons[reason] = 0
        self._fallback_reasons[reason] += 1

    async def open(
        self,
        session: StreamSession,
        channels: list[str],
        *,
        last_event_id: str | None,
        framing: Literal["sse", "websocket"],
        policy: Policy,
        native: bool,
    ) -> Connection:
        runtime, cfg = self._runtime, self._config
        if runtime.state == "draining":
            raise shutting_down_error(cfg.retry_after_seconds)
        manager = runtime.manager
        if manager is None or (native and self._native is None):
            raise shutting_down_error(cfg.retry_after_seconds)
        notifier = self._native.notifier() if native and self._native else self.delivery().notifier
        arguments: dict[str, Any] = {
            "notifier": notifier,
            "ip": session.ip,
            "channels": channels,
            "last_event_id": last_event_id,
            "framing": framing,
            "overflow": cfg.overflow,
            "mailbox_events": cfg.mailbox_events,
            "mailbox_bytes": cfg.mailbox_bytes,
            "policy": policy,
            # A policy replaces tabs of the same transport only: a chat WebSocket
            # never closes the same browser's SSE streams.
            "group": framing,
        }
        try:
            if last_event_id and runtime.blocking_resume:
                # A replay may seek Kafka for up to its timeout: never on the loop.
                connection = await asyncio.to_thread(manager.open, session.id, **arguments)
            else:
                connection = manager.open(session.id, **arguments)
        except LimitExceededError as exc:
            raise limit_error(exc, cfg.retry_after_seconds) from None
        except ClosedError:
            raise shutting_down_error(cfg.retry_after_seconds) from None
        except TooManyChannelsError as exc:
            raise StreamHTTPError(
                400, "too_many_channels", str(exc), extra={"limit": exc.limit}
            ) from None
        except InvalidArgumentError as exc:
            raise StreamHTTPError(400, "invalid_channel", str(exc)) from None
        return connection

    def find(self, connection_id: int) -> Slot | NativeSlot | None:
        for delivery in self._deliveries.values():
            slot = delivery.find(connection_id)
            if slot is not None:
                return slot
        if self._native is not None:
            return self._native.find(connection_id)
        return None

    def counts(self) -> dict[str, dict[str, int]]:
        python = {"sse": 0, "websocket": 0}
        for delivery in self._deliveries.values():
            for slot in delivery.slots.values():
                python[slot.transport] = python.get(slot.transport, 0) + 1
        native = self._native.open_connections() if self._native else {"sse": 0, "websocket": 0}
        return {"native": native, "python": python}

    def status(self) -> dict[str, Any]:
        mode, why = self.expected_mode()
        return {
            "mode": mode,
            "why": why,
            "native_engine": self._native is not None,
            "open": self.counts(),
            "fallback_reasons": dict(self._fallback_reasons),
        }

    def expected_mode(self) -> tuple[Literal["native", "python"], str]:
        if self._native is None:
            return "python", "native_delivery is off"
        threads = self._config.native_threads
        engine = f"{threads} engine thread{'s' if threads > 1 else ''}"
        # The server resolves its protocol classes before it imports the app.
        if "sessionstream.server.protocols" in sys.modules:
            return "native", f"{engine}; the server offers the handoff extension"
        return "python", (
            f"native engine idle ({engine}): the server does not load the sessionstream.server"
            " protocol classes; start it with `sessionstream serve` for native delivery"
        )

    def track_handler(self, task: asyncio.Task[None]) -> None:
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    def begin_shutdown(self) -> None:
        if self._native is not None:
            self._native.begin_shutdown()

    async def drain(self, deadline: float) -> None:
        """Wait until ``deadline`` (loop time) for every stream of this loop to flush its
        shutdown frame and for message handlers to finish; then cut off the rest."""
        loop = asyncio.get_running_loop()
        deliveries = [d for d in self._deliveries.values() if d.loop is loop]
        if deliveries:
            waiter = asyncio.gather(*(d.wait_empty() for d in deliveries))
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                left = sum(len(d.slots) for d in deliveries)
                logger.warning("shutdown deadline passed; cutting off %d connection(s)", left)
                for delivery in deliveries:
                    delivery.abort_all()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        asyncio.gather(*(d.wait_empty() for d in deliveries)), 1.0
                    )
        if self._native is not None and not await self._native.wait_idle(
            max(0.0, deadline - loop.time())
        ):
            left = sum(self._native.open_connections().values())
            logger.warning("shutdown deadline passed; cutting off %d native connection(s)", left)
        handlers = [t for t in self._handler_tasks if not t.done()]
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=max(0.0, deadline - loop.time()))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for delivery in list(self._deliveries.values()):
            if delivery.loop is loop:
                delivery.close()
            elif not delivery.loop.is_closed():
                # remove_reader belongs to the delivery's own loop thread.
                delivery.loop.call_soon_threadsafe(delivery.close)
        self._deliveries.clear()
        if self._native is not None:
            self._native.stop()
            self._native = None
