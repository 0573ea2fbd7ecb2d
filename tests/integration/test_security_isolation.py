"""An attacker session tries every way to read or disturb another session's stream.

Each attempt must be refused (or be a no-op) and, after the victim is sent private
events, the attacker must have received none of them. Runs on both delivery modes.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .support import ServerProcess, SSEClient, WSClient, publish, session_id


async def _quiet(stream: SSEClient | WSClient, secret: str, wait: float = 0.5) -> None:
    """Nothing carrying ``secret`` arrives on ``stream`` within ``wait`` seconds."""
    try:
        while True:
            if isinstance(stream, SSEClient):
                event = await stream.next(wait)
                assert secret not in event.data, event
            else:
                message = await stream.next(timeout=wait)
                assert secret not in str(message), message
    except (asyncio.TimeoutError, TimeoutError):
        return


async def _reaches(sse: SSEClient, ws: WSClient, event_id: str) -> None:
    """Both victim streams deliver ``event_id`` (after the earlier private events)."""
    while (await sse.next()).id != event_id:
        pass
    while (await ws.next_type("event"))["id"] != event_id:
        pass


@pytest.mark.asyncio
async def test_every_way_into_another_sessions_stream(stream_server: ServerProcess) -> None:
    victim, attacker = session_id("victim"), session_id("attacker")
    private = f"session:{victim}"
    async with (
        SSEClient(stream_server.url, session_id=victim) as v_sse,
        await WSClient.open(stream_server.ws_url, session_id=victim) as v_ws,
        httpx.AsyncClient(base_url=stream_server.url, timeout=5.0) as client,
    ):
        assert v_sse.welcome is not None and v_ws.welcome is not None
        (victim_id,) = await publish(stream_server, private, {"secret": "s-1"})
        assert (await v_sse.next()).id == victim_id
        assert (await v_ws.next_type("event"))["id"] == victim_id

        # 1. SSE ?channel=session:<victim>, plain and disguised.
        for channel in (private, private + " ", private.upper()):
            async with SSEClient(stream_server.url, [channel], session_id=attacker) as s:
                if s.status_code == 200:  # a different channel name: it must stay silent
                    await publish(stream_server, private, {"secret": "s-disguise"})
                    await _quiet(s, "s-disguise")
                else:
                    assert s.status_code in (400, 403)
        # 2. WebSocket connect and subscribe to it, with and without a resume id.
        ws = await WSClient.open(
            stream_server.ws_url, channels=[private], session_id=attacker, expect_welcome=False
        )
        code, reason, _ = await ws.until_closed()
        assert code == 1008 and "forbidden_channel" in reason
        async with await WSClient.open(stream_server.ws_url, session_id=attacker) as a_ws:
            for message in (
                {"type": "subscribe", "channels": [private], "ref": 1},
                {"type": "subscribe", "channels": [private], "last_event_id": victim_id, "ref": 2},
                {"type": "subscribe", "channel": private, "last_event_id": "0-0", "ref": 3},
            ):
                await a_ws.send(message)
                error = await a_ws.next_type("error")
                assert error["error"] == "forbidden_channel" and error["ref"] == message["ref"]
            # 3. Resume on its own stream from the victim's event id (header and query).
            async with (
                SSEClient(
                    stream_server.url, ["news"], session_id=attacker, last_event_id="0-0"
                ) as a_resume,
                SSEClient(
                    stream_server.url,
                    ["news"],
                    session_id=attacker,
                    last_event_id_query=victim_id,
                ) as a_resume_q,
            ):
                # 4. Close the victim's connections, disconnect its channel, clean it up.
                mine = {"X-Session-ID": attacker}
                for conn in (v_sse.welcome["connection_id"], v_ws.welcome["connection_id"]):
                    r = await client.post(f"/stream/connections/{conn}/close", headers=mine)
                    assert r.status_code == 404
                r = await client.post(
                    "/stream/session/disconnect", params={"channel": private}, headers=mine
                )
                assert r.status_code in (200, 400, 403)
                if r.status_code == 200:
                    assert r.json()["disconnected_connections"] == 0

                # The victim still receives; the attacker's streams received nothing of it.
                (later,) = await publish(stream_server, private, {"secret": "s-2"})
                await _reaches(v_sse, v_ws, later)
                for stream in (a_resume, a_resume_q, a_ws):
                    await _quiet(stream, "s-", wait=0.3)
                # Cleaning up acts on the caller's own session only.
                r = await client.post("/stream/session/cleanup", headers=mine)
                assert r.status_code == 200
        (last,) = await publish(stream_server, private, {"secret": "s-3"})
        await _reaches(v_sse, v_ws, last)


@pytest.mark.asyncio
async def test_authorize_hook_refuses_on_every_path(stream_server: ServerProcess) -> None:
    """stream_app's hook refuses channels starting with ``forbidden:``."""
    sid = session_id("curious")
    (secret_id,) = await publish(stream_server, "forbidden:vault", {"secret": "v-1"})
    async with SSEClient(stream_server.url, ["forbidden:vault"], session_id=sid) as sse:
        assert sse.status_code == 403
    async with SSEClient(
        stream_server.url, ["forbidden:vault"], session_id=sid, last_event_id="0-0"
    ) as resume:
        assert resume.status_code == 403
    ws = await WSClient.open(
        stream_server.ws_url,
        channels=["forbidden:vault"],
        session_id=sid,
        last_event_id=secret_id,
        expect_welcome=False,
    )
    code, reason, _ = await ws.until_closed()
    assert code == 1008 and "forbidden_channel" in reason
    async with await WSClient.open(stream_server.ws_url, session_id=sid) as ws:
        for ref, resume_id in ((1, None), (2, "0-0")):
            message: dict[str, object] = {
                "type": "subscribe",
                "channels": ["forbidden:vault"],
                "ref": ref,
            }
            if resume_id:
                message["last_event_id"] = resume_id
            await ws.send(message)
            assert (await ws.next_type("error"))["error"] == "forbidden_channel"
        await publish(stream_server, "forbidden:vault", {"secret": "v-2"})
        await _quiet(ws, "v-", wait=0.3)
