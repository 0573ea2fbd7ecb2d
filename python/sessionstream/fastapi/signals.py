"""SIGINT/SIGTERM start a hub's drain, then the server's own handler runs as before.

Servers wait for open requests before the lifespan shutdown, and a stream never ends by
itself: without this the drain would only start after the server gave up waiting.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable
from typing import Any


class DrainSignals:
    """Chains ``on_signal`` in front of the current SIGINT/SIGTERM handlers."""

    def __init__(self, on_signal: Callable[[], None]) -> None:
        self._on_signal = on_signal
        self._installed: dict[int, tuple[Any, Any]] = {}

    def install(self) -> None:
        # Only the main thread may set handlers; elsewhere the server drains the hub.
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue
            handler = functools.partial(self._handle, previous)
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):  # pragma: no cover - not the main interpreter
                continue
            self._installed[sig] = (handler, previous)

    def restore(self) -> None:
        """Put the previous handlers back, unless someone replaced ours meanwhile."""
        for sig, (handler, previous) in self._installed.items():
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, previous)
        self._installed.clear()

    def _handle(self, previous: Callable[[int, Any], Any], signum: int, frame: Any) -> None:
        self._on_signal()
        previous(signum, frame)
