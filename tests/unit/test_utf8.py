"""Frames are UTF-8 text: what is published must be, and what is echoed stays so."""

from __future__ import annotations

import json

import pytest

import sessionstream as ss
from sessionstream.fastapi import StreamHub
from sessionstream.fastapi.delivery import OUTBOX_MAX_FRAMES, Slot
from sessionstream.fastapi.frames import encode_frame, error_frame

SID = "session-utf8-0001"


@pytest.fixture
def hub() -> ss.Hub:
    hub = ss.Hub(history_max_events=8)
    yield hub
    hub.close()


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"\xff", 0),
        (b"caf\xc3\xa9 \xc3", 6),  # cut short at the end
        (b"\xed\xa0\x80", 0),  # an encoded surrogate
        (b"x" * 5000 + b"\x80", 5000),
        ("lone \udcff surrogate", 5),  # a str with no UTF-8 form
    ],
)
def test_publish_refuses_data_that_is_not_utf8_naming_the_offset(
    hub: ss.Hub, data: bytes | str, offset: int
) -> None:
    with pytest.raises(ss.InvalidUtf8Error) as caught:
        hub.publish("a", data)
    error = caught.value
    assert isinstance(error, ss.InvalidArgumentError) and isinstance(error, ValueError)
    assert error.field == "data" and error.offset == offset
    assert f"event data is not valid UTF-8: the sequence at byte offset {offset}" in str(error)
    assert hub.metrics()["published"] == 0, "a refused event was published"


def test_publish_refuses_an_event_type_that_is_not_utf8(hub: ss.Hub) -> None:
    with pytest.raises(ss.InvalidUtf8Error, match="event type is not valid UTF-8") as caught:
        hub.publish("a", "x", "caf\udce9")
    assert caught.value.field == "event" and caught.value.offset == 3
    assert hub.publish("a", "x", "café").endswith("-1")


def test_a_refused_event_never_reaches_subscribers_or_history(hub: ss.Hub) -> None:
    manager = ss.ConnectionManager(hub)
    notifier = ss.Notifier()
    try:
        ws = manager.open(SID, notifier=notifier, channels=["a"], framing="websocket")
        first = hub.publish("a", "before")
        with pytest.raises(ss.InvalidUtf8Error):
            hub.publish("a", b"\xff\xfe")
        last = hub.publish("a", "after é")
        frames = ws.take()[0]
        assert [m["data"] for m in json.loads(frames.decode())] == ["before", "after é"]
        epoch = first.split("-")[0]
        resumed = manager.open(
            SID, notifier=notifier, channels=["a"], last_event_id=f"{epoch}-0", framing="websocket"
        )
        replay = json.loads(resumed.take()[0].decode())
        assert [m["id"] for m in replay] == [first, last]
        ws.close()
        resumed.close()
    finally:
        manager.shutdown()


def test_send_personal_refuses_data_that_is_not_utf8(hub: ss.Hub) -> None:
    manager = ss.ConnectionManager(hub)
    try:
        with pytest.raises(ss.InvalidUtf8Error, match="byte offset 2"):
            manager.send_personal(SID, b"ok\xff")
    finally:
        manager.shutdown()


def test_stream_hub_publish_surfaces_a_value_error() -> None:
    stream = StreamHub()
    with pytest.raises(ValueError, match="not valid UTF-8") as caught:
        stream.publish("news", b"\xff")
    assert isinstance(caught.value, ss.InvalidUtf8Error) and caught.value.offset == 0
    with pytest.raises(ss.InvalidUtf8Error):
        stream.send_personal(SID, bytearray(b"\x80"))
    assert stream.publish("news", "café".encode()).endswith("-1")


def test_publish_of_a_non_text_object_is_a_clear_type_error(hub: ss.Hub) -> None:
    with pytest.raises(TypeError, match="data must be str or bytes, got int"):
        hub.publish("a", 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("extra", ["é", "€", "😀"])
def test_error_messages_quote_input_on_character_boundaries(hub: ss.Hub, extra: str) -> None:
    # The message quotes the first 80 bytes: the last character must not be split.
    with pytest.raises(ss.InvalidArgumentError, match="channel name 'c{79}' is invalid"):
        hub.publish("c" * 79 + extra, "x")
    with pytest.raises(ss.InvalidArgumentError, match=r"session id 's{63}\.\.\.'"):
        ss.validate_session_id("s" * 63 + extra)


def test_client_names_with_lone_surrogates_are_refused_not_a_type_error(hub: ss.Hub) -> None:
    # JSON allows "\\ud800": a WebSocket message can carry a str with no UTF-8 form.
    assert ss.is_foreign_private_channel("\ud800", "abc") is False
    assert ss.is_foreign_private_channel("session:\ud800", SID) is True
    manager = ss.ConnectionManager(hub)
    try:
        connection = manager.open(SID, notifier=ss.Notifier(), framing="websocket")
        with pytest.raises(ss.InvalidArgumentError, match="channel name '\ufffd+' is invalid"):
            connection.subscribe(["ok", "\ud800"])
        assert connection.channels == [f"session:{SID}"]
        connection.unsubscribe("\udcff")  # not subscribed: nothing to do
        assert connection.subscribe(["ok"], "\ud800-1") == "reset"
        with pytest.raises(TypeError, match="list of names"):
            connection.subscribe("ok")  # type: ignore[arg-type]
        connection.close()
    finally:
        manager.shutdown()


def test_direct_frames_are_utf8_even_when_they_echo_lone_surrogates() -> None:
    plain = encode_frame({"type": "pong", "echo": "café"})
    assert plain == '[{"type":"pong","echo":"café"}]'  # non-ASCII text stays as it is
    echoed = encode_frame({"type": "pong", "echo": "a\ud800", "ref": "\udcff"})
    assert echoed.encode().isascii()
    assert json.loads(echoed) == [{"type": "pong", "echo": "a\ud800", "ref": "\udcff"}]
    assert json.loads(error_frame("invalid_channel", "x", "\ud800"))[0]["ref"] == "\ud800"


def test_a_native_message_cut_mid_character_still_maps_to_its_error() -> None:
    # librdkafka cuts its error text at a fixed size, wherever a character is; the
    # mapping decodes leniently instead of failing with a UnicodeDecodeError.
    seen_replacement = False
    for pad in (150, 151):
        value = "a" * pad + "é" * 300
        with pytest.raises(ss.InvalidArgumentError, match="security.protocol") as caught:
            ss.KafkaSink(
                properties={"bootstrap.servers": "127.0.0.1:1", "security.protocol": value}
            )
        seen_replacement |= "\ufffd" in str(caught.value)
    assert seen_replacement, "expected one of the texts to be cut inside a character"


class _Connection:
    def __init__(self) -> None:
        self.id = 7
        self.session_id = SID
        self.closed_with: list[str] = []

    def close(self, reason: str = "client_gone") -> None:
        self.closed_with.append(reason)


@pytest.mark.asyncio
async def test_slot_outbox_is_bounded_and_overflow_closes_as_slow_consumer() -> None:
    connection = _Connection()
    slot = Slot(connection, "websocket")  # type: ignore[arg-type]
    for n in range(OUTBOX_MAX_FRAMES):
        slot.post(f"[{n}]")
    assert len(slot.outbox) == OUTBOX_MAX_FRAMES and connection.closed_with == []
    slot.post("[one too many]")
    assert connection.closed_with == ["slow_consumer"]
    assert len(slot.outbox) == 0 and slot.wake.is_set()
    for _ in range(10_000):
        slot.post("[more]")
    assert len(slot.outbox) == 0 and connection.closed_with == ["slow_consumer"]
