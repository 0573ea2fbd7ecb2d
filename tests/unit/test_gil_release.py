"""Native destructors that join threads or wait on the network must not hold the GIL."""

from __future__ import annotations

import gc
import threading
import time

import pytest

import sessionstream as ss
from sessionstream import _core

TICK = 0.002


class Ticker:
    """A Python thread counting ticks: it only advances while it can get the GIL."""

    def __init__(self) -> None:
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ticks += 1
            time.sleep(TICK)

    def __enter__(self) -> Ticker:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ticks_while(ticker: Ticker, action: object) -> tuple[int, float]:
    before = ticker.ticks
    started = time.monotonic()
    action()  # type: ignore[operator]
    return ticker.ticks - before, time.monotonic() - started


@pytest.mark.skipif(not _core.HAS_KAFKA, reason="built without librdkafka")
def test_kafka_source_destroyed_without_stop_lets_python_threads_run() -> None:
    hub = ss.Hub()
    # Nothing listens on port 1: closing the consumer waits on librdkafka's
    # attempts to leave a group it never reached.
    source = ss.KafkaSource(
        hub,
        properties={"bootstrap.servers": "127.0.0.1:1"},
        topics=["gil-release"],
        node_id=f"gil-{time.monotonic_ns()}",
    )
    source.start()
    time.sleep(0.3)
    holder = [source]
    del source

    def destroy() -> None:
        holder.clear()
        gc.collect()

    with Ticker() as ticker:
        ticks, elapsed = ticks_while(ticker, destroy)
    if elapsed < 0.1:
        pytest.skip(f"destruction took {elapsed:.3f} s: too quick to tell")
    # Holding the GIL for the whole join would leave at most a tick or two.
    assert ticks >= 0.3 * elapsed / TICK, (ticks, elapsed)
