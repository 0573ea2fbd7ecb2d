"""The native core driven from Python: behaviour and every bad-input path."""

from __future__ import annotations

import json
import os
import select

import pytest

import sessionstream as ss

SID = "session-aaaa1111"
OTHER = "session-bbbb2222"


@pytest.fixture
def hub() -> ss.Hub:
    hub = ss.Hub(history_max_events=8)
    yield hub
    hub.close()


@pytest.fixture
def notifier() -> ss.Notifier:
    return ss.Notifier()


@pytest.fixture
def manager(hub: ss.Hub) -> ss.ConnectionManager:
    manager = ss.ConnectionManager(hub, max_connections=4, max_per_ip=3, max_per_session=2)
    yield manager
    manager.shutdown()


def sse_ids(frames: bytes) -> list[str]:
    return [line[4:] for line in frames.decode().splitlines() if line.startswith("id: ")]


def take_position(conn: ss.Connection, hub: ss.Hub) -> None:
    """A live SSE subscription starts with an id-only frame naming the head."""
    assert conn.take() == (f"id: {hub.head_id}\n\n".encode(), False, "")


def test_live_sse_subscription_starts_with_its_position(hub, manager, notifier) -> None:
    hub.publish("a", "before")
    conn = manager.open(SID, notifier=notifier, channels=["a"])
    take_position(conn, hub)
    ws = manager.open(SID, notifier=notifier, channels=["a"], framing="websocket")
    assert ws.take() == (b"", False, "")


def test_publish_returns_increasing_ids_in_the_hub_epoch(hub: ss.Hub) -> None:
    ids = [hub.publish("a", b"x") for _ in range(3)]
    epochs = {i.split("-")[0] for i in ids}
    assert epochs == {format(hub.epoch, "x")}
    assert [int(i.split("-")[1]) for i in ids] == [1, 2, 3]
    assert hub.head_id == ids[-1]


def test_sse_frames_are_multiline_safe(hub, manager, notifier) -> None:
    conn = manager.open(SID, notifier=notifier, channels=["a"])
    hub.publish("a", "line one\nline two\r\nline three", "note")
    frames, closed, _ = conn.take()
    assert not closed
    text = frames.decode()
    assert "event: note\n" in text
    assert "data: line one\ndata: line two\ndata: line three\n\n" in text


def test_websocket_batch_is_a_json_array_with_json_data(hub, manager, notifier) -> None:
    conn = manager.open(SID, notifier=notifier, channels=["a"], framing="websocket")
    hub.publish("a", json.dumps({"n": 1}), json=True)
    hub.publish("a", 'plain "text"')
    frames, _, _ = conn.take()
    batch = json.loads(frames)
    assert [e["data"] for e in batch] == [{"n": 1}, 'plain "text"']
    assert all(e["type"] == "event" and e["channel"] == "a" for e in batch)


def test_notifier_wakes_once_for_many_events(hub, manager, notifier) -> None:
    conn = manager.open(SID, notifier=notifier, channels=["a"])
    take_position(conn, hub)
    assert notifier.take_ready() == [conn.id]
    for i in range(50):
        hub.publish("a", str(i))
    readable, _, _ = select.select([notifier.fileno()], [], [], 1.0)
    assert readable
    assert notifier.take_ready() == [conn.id]
    readable, _, _ = select.select([notifier.fileno()], [], [], 0)
    assert not readable  # coalesced: one wake-up for fifty events
    frames, _, _ = conn.take()
    assert len(sse_ids(frames)) == 50


def test_resume_replays_exactly_the_missed_events(hub, manager, notifier) -> None:
    first = manager.open(SID, notifier=notifier, channels=["a", "b"])
    ids = [hub.publish("a" if i % 2 else "b", str(i)) for i in range(6)]
    first.close()
    resumed = manager.open(SID, notifier=notifier, channels=["a", "b"], last_event_id=ids[2])
    assert resumed.resume == "exact"
    frames, _, _ = resumed.take()
    assert sse_ids(frames) == ids[3:]


def test_resume_beyond_history_reports_a_gap(hub, manager, notifier) -> None:
    ids = [hub.publish("a", str(i)) for i in range(20)]  # ring holds 8
    conn = manager.open(SID, notifier=notifier, channels=["a"], last_event_id=ids[0])
    assert conn.resume == "gap"
    frames, _, _ = conn.take()
    text = frames.decode()
    # no id on the gap: the replayed events that follow carry the position
    assert text.startswith("event: gap\n")
    assert sse_ids(frames) == ids[-8:]


@pytest.mark.parametrize(
    ("last_id", "reason"),
    [
        ("garbage", "malformed_id"),
        ("", "malformed_id"),
        ("1-2-3", "malformed_id"),
        ("dead-1", "unknown_epoch"),
        ("\n\rid: 1", "malformed_id"),
    ],
)
def test_bad_last_event_id_gets_an_explicit_reset(hub, manager, notifier, last_id, reason) -> None:
    hub.publish("a", "x")
    conn = manager.open(SID, notifier=notifier, channels=["a"], last_event_id=last_id)
    assert conn.resume == "reset"
    frames, _, _ = conn.take()
    lines = frames.decode().splitlines()
    assert lines[0] == f"id: {hub.head_id}"
    assert lines[1] == "event: reset"
    assert json.loads(lines[2][len("data: ") :])["reason"] == reason
    hub.publish("a", "after")
    assert b"after" in conn.take()[0]  # the connection streams on after the reset


def test_future_id_is_reset(hub, manager, notifier) -> None:
    future = f"{hub.epoch:x}-999"
    conn = manager.open(SID, notifier=notifier, channels=["a"], last_event_id=future)
    assert conn.resume == "reset"
    assert b'"reason":"future_id"' in conn.take()[0]


@pytest.mark.parametrize(
    "bad", ["", "short", "has space 1234", "x" * 129, "semi;colon123", "ü" * 10]
)
def test_invalid_session_ids_are_rejected_with_the_rule(manager, notifier, bad) -> None:
    with pytest.raises(ss.InvalidArgumentError, match="8-128 characters of A-Z a-z 0-9 - _"):
        manager.open(bad, notifier=notifier)
    assert manager.metrics()["active_connections"] == 0
    assert not ss.is_valid_session_id(bad)


def test_generated_session_ids_are_valid_and_unique() -> None:
    ids = {ss.generate_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(ss.is_valid_session_id(i) for i in ids)


def test_foreign_private_channel_is_refused(manager, notifier) -> None:
    with pytest.raises(ss.InvalidArgumentError, match="another session's private channel"):
        manager.open(SID, notifier=notifier, channels=[ss.private_channel(OTHER)])
    conn = manager.open(SID, notifier=notifier, channels=[ss.private_channel(SID)])
    with pytest.raises(ss.InvalidArgumentError):
        conn.subscribe([f"session:{OTHER}"])
    assert f"session:{OTHER}" not in conn.channels


def test_send_personal_reaches_only_that_session(hub, manager, notifier) -> None:
    mine = manager.open(SID, notifier=notifier, framing="websocket")
    theirs = manager.open(OTHER, notifier=notifier, framing="websocket")
    manager.send_personal(SID, "for you")
    assert b"for you" in mine.take()[0]
    assert theirs.take()[0] == b""


@pytest.mark.parametrize("channel", ["", "has space", "tab\tchar", "x" * 300, "nl\n"])
def test_invalid_channel_names(hub, channel) -> None:
    with pytest.raises(ss.InvalidArgumentError, match="channel name"):
        hub.publish(channel, "x")


def test_payload_over_maximum_is_refused_and_nothing_is_published() -> None:
    hub = ss.Hub(max_event_bytes=16)
    with pytest.raises(ss.PayloadTooLargeError, match="17 bytes; the maximum is 16"):
        hub.publish("a", b"x" * 17)
    assert hub.metrics()["published"] == 0
    assert hub.publish("a", b"x" * 16).endswith("-1")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ss.Hub(history_max_events=0), "history_max_events must be positive"),
        (lambda: ss.Hub(history_max_events=-3), "history_max_events must be positive"),
        (lambda: ss.Hub(history_max_age=0), "history_max_age"),
        (lambda: ss.Hub(max_event_bytes=0), "max_event_bytes"),
        (lambda: ss.ConnectionManager(ss.Hub(), max_connections=0), "max_connections"),
        (lambda: ss.ConnectionManager(ss.Hub(), max_per_ip=-1), "max_per_ip"),
        (
            lambda: ss.ConnectionManager(ss.Hub(), policy="sometimes"),
            "latest, swap_after_processing or failover",
        ),
        (lambda: ss.MemorySessionStore(idle_timeout=0), "idle_timeout"),
        (lambda: ss.MemorySessionStore(max_history_entries=0), "max_history_entries"),
    ],
)
def test_zero_or_negative_capacities_are_rejected(factory, message) -> None:
    with pytest.raises(ss.InvalidArgumentError, match=message):
        factory()


def test_bad_mailbox_options(manager, notifier) -> None:
    with pytest.raises(ss.InvalidArgumentError, match="mailbox_events must be positive"):
        manager.open(SID, notifier=notifier, mailbox_events=0)
    with pytest.raises(ss.InvalidArgumentError, match="framing 'xml'"):
        manager.open(SID, notifier=notifier, framing="xml")
    with pytest.raises(ss.InvalidArgumentError, match="overflow policy"):
        manager.open(SID, notifier=notifier, overflow="block")
    assert manager.metrics()["active_connections"] == 0


def test_limits_have_typed_reasons_and_free_on_close(manager, notifier) -> None:
    held = [
        manager.open(SID, notifier=notifier, ip="10.0.0.1"),
        manager.open(SID, notifier=notifier, ip="10.0.0.2"),
    ]
    with pytest.raises(ss.LimitExceededError) as per_session:
        manager.open(SID, notifier=notifier, ip="10.0.0.3")
    assert (per_session.value.kind, per_session.value.limit) == ("per_session", 2)
    held.append(manager.open(OTHER, notifier=notifier, ip="10.0.0.9"))
    held.append(manager.open("session-cccc3333", notifier=notifier, ip="10.0.0.9"))
    with pytest.raises(ss.LimitExceededError) as full:
        manager.open("session-dddd4444", notifier=notifier, ip="10.0.0.9")
    assert full.value.kind == "server_full"
    assert "max_connections" in str(full.value)
    held.pop(0).close()
    held.append(manager.open("session-dddd4444", notifier=notifier, ip="10.0.0.9"))
    metrics = manager.metrics()
    assert metrics["rejections_per_session"] == 1
    assert metrics["rejections_server_full"] == 1
    assert metrics["active_connections"] == 4


def test_dropping_the_last_reference_releases_the_slot(manager, notifier) -> None:
    manager.open(SID, notifier=notifier)  # not kept: released at once
    assert manager.metrics()["active_connections"] == 0


def test_per_ip_limit() -> None:
    manager = ss.ConnectionManager(ss.Hub(), max_per_ip=1)
    n = ss.Notifier()
    keep = manager.open(SID, notifier=n, ip="192.0.2.1")
    with pytest.raises(ss.LimitExceededError) as err:
        manager.open(OTHER, notifier=n, ip="192.0.2.1")
    assert err.value.kind == "per_ip"
    assert "max_per_ip" in str(err.value)
    keep.close()


def test_slow_consumer_is_closed_with_a_reason(hub, manager, notifier) -> None:
    conn = manager.open(SID, notifier=notifier, channels=["a"], mailbox_events=4)
    for i in range(5):
        hub.publish("a", str(i))
    frames, closed, reason = conn.take()
    assert (frames, closed, reason) == (b"", True, "slow_consumer")
    assert hub.metrics()["slow_consumer_disconnects"] == 1
    assert hub.subscriber_count("a") == 0
    kinds = [e.kind for e in hub.take_lifecycle()]
    assert "slow_consumer" in kinds


def test_drop_oldest_tells_the_receiver(hub, manager, notifier) -> None:
    conn = manager.open(
        SID, notifier=notifier, channels=["a"], mailbox_events=3, overflow="drop_oldest"
    )
    take_position(conn, hub)
    ids = [hub.publish("a", str(i)) for i in range(5)]
    frames, closed, _ = conn.take()
    assert not closed
    assert frames.startswith(b'event: gap\ndata: {"reason":"dropped_oldest","missed":2}\n\n')
    assert sse_ids(frames) == ids[2:]


def test_swap_after_processing(hub, manager, notifier) -> None:
    old = manager.open(SID, notifier=notifier, policy="swap_after_processing")
    manager.mark_processing(old.id)
    new = manager.open(SID, notifier=notifier, policy="swap_after_processing")
    metrics = manager.metrics()
    assert (metrics["pending_swaps"], metrics["processing_connections"]) == (1, 1)
    manager.send_personal(SID, "token")  # the in-flight reply reaches both tabs
    assert b"token" in old.take()[0]
    assert b"token" in new.take()[0]
    manager.unmark_processing(old.id)
    assert old.take() == (b"", True, "replaced")
    old.close()
    assert manager.metrics()["pending_swaps"] == 0
    assert manager.metrics()["active_connections"] == 1
    kinds = [e.kind for e in hub.take_lifecycle()]
    assert kinds.count("swapped") == 1


def test_latest_policy_replaces_the_old_tab(manager, notifier) -> None:
    old = manager.open(SID, notifier=notifier, policy="latest", framing="websocket")
    new = manager.open(SID, notifier=notifier, policy="latest", framing="websocket")
    assert old.take() == (b"", True, "replaced")
    assert not new.closed


def test_use_after_close_is_a_clear_error_and_the_process_stays_healthy(hub, manager, notifier):
    conn = manager.open(SID, notifier=notifier, channels=["a"])
    conn.close()
    conn.close()  # idempotent
    with pytest.raises(ss.ClosedError, match="is closed"):
        conn.subscribe(["b"])
    assert conn.take()[1] is True
    manager.shutdown()
    with pytest.raises(ss.ClosedError, match="shutting down"):
        manager.open(SID, notifier=notifier)
    hub.close()
    with pytest.raises(ss.ClosedError, match="hub is closed"):
        hub.publish("a", "x")
    fresh = ss.Hub()
    assert fresh.publish("a", "still fine").endswith("-1")


def test_health_views(hub, manager, notifier) -> None:
    conn = manager.open(SID, notifier=notifier, channels=["party", "deposits"])
    manager.record_client_message()
    (view,) = manager.sessions()
    assert view["session_id"] == SID
    assert view["channels"] == ["deposits", "party", f"session:{SID}"]
    assert view["connections"] == 1
    metrics = manager.metrics()
    assert metrics["client_messages"] == 1
    assert metrics["client_messages_per_connection"] == 1.0
    assert metrics["unique_browser_sessions"] == 1
    conn.close()
    assert manager.sessions() == []


def test_session_store(tmp_path) -> None:
    store = ss.MemorySessionStore(max_history_entries=3, max_value_bytes=8)
    store.set(SID, "k", "v")
    assert store.get(SID, "k") == "v"
    assert store.get(SID, "missing") is None
    for i in range(5):
        store.append_history(SID, f"m{i}")
    assert store.history(SID, 10) == ["m2", "m3", "m4"]
    assert SID in store and len(store) == 1
    with pytest.raises(ss.PayloadTooLargeError, match="maximum is 8"):
        store.set(SID, "k", "123456789")
    with pytest.raises(ss.InvalidArgumentError):
        store.set("bad id", "k", "v")
    assert store.erase_session(SID)
    assert SID not in store


def test_session_store_names_match_the_core() -> None:
    # SessionStore is the interface; constructing it still works but warns.
    assert issubclass(ss.MemorySessionStore, ss.SessionStore)
    assert issubclass(ss.RedisSessionStore, ss.SessionStore)
    with pytest.warns(DeprecationWarning, match="construct MemorySessionStore"):
        store = ss.SessionStore(max_history_entries=2)
    store.set(SID, "k", "v")
    assert store.get(SID, "k") == "v"


def test_no_fd_leak_from_notifiers() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(200):
        ss.Notifier()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_resume_replay_larger_than_the_mailbox_is_not_a_slow_consumer(hub, manager, notifier):
    ids = [hub.publish("a", str(i)) for i in range(8)]
    conn = manager.open(
        SID, notifier=notifier, channels=["a"], last_event_id=ids[0], mailbox_events=2
    )
    live = hub.publish("a", "live")
    frames, closed, _ = conn.take()
    assert not closed
    assert sse_ids(frames) == [*ids[1:], live]


def test_policies_act_within_one_group(manager, notifier) -> None:
    stream = manager.open(SID, notifier=notifier, group="sse", framing="websocket")
    chat = manager.open(SID, notifier=notifier, group="websocket", policy="latest")
    assert not stream.take()[1]  # another group: untouched
    manager.open(SID, notifier=notifier, group="websocket", policy="latest", framing="websocket")
    assert chat.take()[1:] == (True, "replaced")
