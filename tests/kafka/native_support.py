"""Helpers for driving the native Kafka classes directly: SSE parsing of a connection's
mailbox and polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sessionstream as ss


@dataclass
class Frame:
    id: str | None
    event: str
    data: str


def parse_frames(raw: bytes) -> list[Frame]:
    frames = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fid, event, data = None, "message", []
        lines = block.split("\n")
        if all(line.startswith("id:") for line in lines):
            # An id-only frame moves the client's Last-Event-ID without an event.
            frames.append(Frame(lines[0].partition(": ")[2], "position", ""))
            continue
        for line in lines:
            name, _, value = line.partition(": ")
            if name == "id":
                fid = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
        frames.append(Frame(fid, event, "\n".join(data)))
    return frames


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last={last!r}")


class Reader:
    """One connection of a ConnectionManager, read as SSE frames."""

    def __init__(self, connection: ss.Connection) -> None:
        self.connection = connection
        self.frames: list[Frame] = []

    def poll(self) -> list[Frame]:
        data, _closed, _reason = self.connection.take()
        if data:
            self.frames.extend(parse_frames(data))
        return self.frames

    def events(self) -> list[Frame]:
        return [f for f in self.poll() if f.event not in ("gap", "reset", "position")]

    def wait_events(self, count: int, timeout: float = 15.0) -> list[Frame]:
        return wait_for(
            lambda: len(self.events()) >= count and self.events(), timeout, f"{count} events"
        )
