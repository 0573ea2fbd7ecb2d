"""Assertions about what sessions received, with failure messages that show it.

Event ids are ``<epoch hex>-<sequence>`` (docs/protocol.md): the sequence is hub-wide,
so the events one stream receives have strictly increasing sequences within an epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .clients import SessionClient, StreamEvent, _Stream

Received = _Stream | SessionClient | Iterable[StreamEvent]


def _events(received: Received) -> list[StreamEvent]:
    if isinstance(received, _Stream):
        return received.of()
    if isinstance(received, SessionClient):
        return received.events()
    return list(received)


def _show(events: Sequence[StreamEvent]) -> str:
    return "\n".join(f"  {i}: {e!r}" for i, e in enumerate(events)) or "  (nothing)"


def _matches(event: StreamEvent, expected: Any) -> bool:
    if isinstance(expected, str):
        return event.event == expected
    if isinstance(expected, tuple) and len(expected) == 2:
        return event.event == expected[0] and event.data == expected[1]
    return event.data == expected


def assert_events(
    received: Received, expected: Sequence[Any], *, ignore: Iterable[str] = ("gap", "reset")
) -> None:
    """Exactly these events in this order. Each expected item is an event type (``str``),
    an ``(event type, data)`` pair, or the data alone. Event types in ``ignore`` are
    skipped in what was received."""
    skipped = set(ignore)
    got = [e for e in _events(received) if e.event not in skipped]
    if len(got) == len(expected) and all(map(_matches, got, expected)):
        return
    first = next(
        (i for i, (e, x) in enumerate(zip(got, expected, strict=False)) if not _matches(e, x)),
        min(len(got), len(expected)),
    )
    raise AssertionError(
        f"expected {len(expected)} event(s), received {len(got)}; first difference at"
        f" #{first}\nexpected:\n"
        + "\n".join(f"  {i}: {x!r}" for i, x in enumerate(expected))
        + f"\nreceived:\n{_show(got)}"
    )


def assert_isolated(
    sessions: Sequence[SessionClient],
    *,
    private_events: Iterable[str] = (),
    owner_key: str = "session",
) -> None:
    """No session received another session's private events: events of the channel
    ``session:<other id>`` (WebSocket events name their channel), and events of the types
    in ``private_events`` whose data does not name the receiving session under
    ``owner_key``."""
    private = set(private_events)
    leaks = []
    for session in sessions:
        for event in session.events():
            channel = event.channel or ""
            if channel.startswith("session:") and channel != session.private_channel:
                leaks.append(f"  {session.id} received {event!r} of channel {channel}")
            elif event.event in private:
                owner = event.data.get(owner_key) if isinstance(event.data, dict) else None
                if owner != session.id:
                    leaks.append(f"  {session.id} received {event!r} ({owner_key}={owner!r})")
    if leaks:
        raise AssertionError("events reached a session they were not for:\n" + "\n".join(leaks))


def _split(event_id: str) -> tuple[str, int]:
    epoch, sep, seq = event_id.rpartition("-")
    if not sep or not epoch or not seq.isdigit():
        raise AssertionError(f"{event_id!r} is not an event id (<epoch hex>-<sequence>)")
    return epoch, int(seq)


def assert_no_gap_no_duplicate(
    ids: Iterable[str | None], *, expected: Iterable[str] | None = None
) -> None:
    """Ids received across reconnects: no id twice, sequences increasing, one epoch.
    With ``expected`` (the ids the server published, e.g. from ``hub.publish``), also no
    id missing: the received ids must be exactly those."""
    seen = [i for i in ids if i is not None]
    repeated = sorted({i for i in seen if seen.count(i) > 1})
    problems = [f"received more than once: {repeated}"] if repeated else []
    parsed = [_split(i) for i in seen]
    epochs = sorted({epoch for epoch, _ in parsed})
    if len(epochs) > 1:
        problems.append(f"ids of {len(epochs)} epochs (a server restart?): {epochs}")
    backwards = [
        f"{seen[i]} after {seen[i - 1]}"
        for i in range(1, len(parsed))
        if parsed[i][0] == parsed[i - 1][0] and parsed[i][1] <= parsed[i - 1][1]
    ]
    if backwards:
        problems.append(f"out of order: {backwards}")
    if expected is not None:
        want = list(expected)
        missing = [i for i in want if i not in seen]
        extra = [i for i in seen if i not in want]
        if missing:
            problems.append(f"missing (a gap): {missing}")
        if extra:
            problems.append(f"not published by the test: {extra}")
    if problems:
        raise AssertionError("; ".join(problems) + f"\nreceived ids: {seen}")


def assert_resumed(
    before: _Stream, after: _Stream, *, published: Iterable[str] | None = None
) -> None:
    """``after`` resumed ``before`` exactly: the server said ``exact``, no ``gap`` or
    ``reset`` frame came, and the two together hold every id once, in order (every id in
    ``published`` when given)."""
    welcome = after.welcome or {}
    problems = []
    if after.resumed_from is None:
        problems.append("the second stream was not opened with a last event id")
    if welcome.get("resume") != "exact":
        problems.append(f"the server resumed as {welcome.get('resume')!r}, not 'exact'")
    frames = after.of("gap", "reset")
    if frames:
        problems.append(f"the resumed stream got {frames!r}")
    if problems:
        raise AssertionError(
            "; ".join(problems) + f"\nbefore:\n{_show(before.of())}\nafter:\n{_show(after.of())}"
        )
    assert_no_gap_no_duplicate([*before.ids(), *after.ids()], expected=published)
