"""Soak: a steady publish rate for a long time while clients join and leave.

    .venv/bin/python bench/soak.py --minutes 60            # the documented one-hour soak
    .venv/bin/python bench/soak.py --minutes 2 --clients 50 # a quick look

The server (``bench/servers/sessionstream_server.py``, native delivery) runs pinned to core 0,
this process (every client) to core 1. Clients are SSE and WebSocket in equal parts; each
lives a random 5-60 s and is replaced, so the server sees joins and leaves all the time.
Every client checks that the events it receives while connected are consecutive (no gap,
no duplicate). Once a minute the server's RSS, descriptors, threads and CPU time (all
threads) are sampled with the delivery count and latency percentiles; the samples and a
summary go to ``bench/results/<date>-soak.{jsonl,md}``. The run fails (exit 1) on any gap,
duplicate or stray frame, or when RSS, descriptors or threads at the end exceed the first
sample after warm-up by more than the stated bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
RSS_GROWTH_BOUND_MIB = 32.0


class Totals:
    def __init__(self) -> None:
        self.events = 0
        self.gaps = 0
        self.duplicates = 0
        self.sessions = 0
        self.refused = 0
        self.errors = 0
        self.latencies_ms: list[float] = []

    def take_latencies(self) -> list[float]:
        taken, self.latencies_ms = self.latencies_ms, []
        return taken


def _check(totals: Totals, last: int | None, payload: dict[str, object]) -> int:
    seq = int(payload["seq"])  # type: ignore[arg-type]
    if last is not None:
        if seq <= last:
            totals.duplicates += 1
        elif seq != last + 1:
            totals.gaps += 1
    totals.events += 1
    if totals.events % 10 == 0:  # a sample is plenty and keeps this client light
        sent_us = int(payload["t"])  # type: ignore[arg-type]
        totals.latencies_ms.append((time.time_ns() // 1000 - sent_us) / 1000)
    return seq


async def sse_client(port: int, lifetime: float, totals: Totals) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /stream/sse?channel=bench HTTP/1.1\r\nHost: soak\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            totals.refused += 1
            return
        totals.sessions += 1
        last: int | None = None
        event = ""
        deadline = time.monotonic() + lifetime
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = await asyncio.wait_for(reader.readline(), left)
            except asyncio.TimeoutError:
                break
            if not line:
                totals.errors += 1
                return
            text = line.decode().rstrip("\r\n")
            if text.startswith("event:"):
                event = text[6:].strip()
            elif text.startswith("data:") and event in ("", "message"):
                last = _check(totals, last, json.loads(text[5:]))
            elif text == "":
                event = ""
    finally:
        writer.close()


async def ws_client(port: int, lifetime: float, totals: Totals) -> None:
    async with connect(f"ws://127.0.0.1:{port}/stream/ws", ping_interval=None) as ws:
        totals.sessions += 1
        await ws.send(json.dumps({"type": "subscribe", "channels": ["bench"]}))
        last: int | None = None
        deadline = time.monotonic() + lifetime
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                break
            for message in json.loads(raw):
                if message.get("type") == "event":
                    last = _check(totals, last, message["data"])


async def population(port: int, size: int, totals: Totals, stop: asyncio.Event) -> None:
    rng = random.Random(7)

    async def one_slot(index: int) -> None:
        while not stop.is_set():
            client = sse_client if index % 2 == 0 else ws_client
            try:
                await client(port, rng.uniform(5, 60), totals)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                totals.errors += 1
                print(f"client error: {exc!r}", file=sys.stderr)
                await asyncio.sleep(1)
            except Exception as exc:  # websockets' ConnectionClosed and the like
                totals.errors += 1
                print(f"client error: {exc!r}", file=sys.stderr)
                await asyncio.sleep(1)

    await asyncio.gather(*(one_slot(i) for i in range(size)))


def proc_sample(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime of every thread
    return {
        "rss_mib": round(rss_kib / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "cpu_s": round(cpu, 2),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen[bytes]:
    # The installed package, else the source tree with its built extension.
    paths = [str(ROOT)] if _installed() else [str(ROOT / "python"), str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [
        "taskset", "-c", "0", sys.executable, "-m", "uvicorn", "sessionstream_server:app",
        "--app-dir", str(ROOT / "bench/servers"), "--port", str(port), "--log-level", "warning",
        "--http", "sessionstream.server:HttpToolsHandoffProtocol",
        "--ws", "sessionstream.server:WebSocketsSansIOHandoffProtocol",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)


def _installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("sessionstream") is not None


async def run(args: argparse.Namespace) -> int:
    os.sched_setaffinity(0, {1})
    port = free_port()
    server = start_server(port)
    totals = Totals()
    samples: list[dict[str, object]] = []
    stop = asyncio.Event()
    date = dt.date.today().isoformat()
    out = ROOT / "bench/results" / f"{date}-soak"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(100):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            seconds = args.minutes * 60
            await http.post(
                "/bench/publish",
                params={"rate": args.rate, "duration": seconds + 30, "size": 100},
            )
            clients = asyncio.create_task(population(port, args.clients, totals, stop))
            started = time.monotonic()
            before = proc_sample(server.pid)
            last_events, last_cpu = 0, before["cpu_s"]
            while (elapsed := time.monotonic() - started) < seconds:
                await asyncio.sleep(min(args.sample, seconds - elapsed))
                now = proc_sample(server.pid)
                stats = (await http.get("/bench/stats")).json()
                lat = sorted(totals.take_latencies()) or [0.0]
                delivered = totals.events - last_events
                cpu = now["cpu_s"] - last_cpu
                sample = {
                    "minute": round((time.monotonic() - started) / 60, 2),
                    **now,
                    "connections": stats["connections"],
                    "delivered": delivered,
                    "cpu_us_per_delivery": round(cpu / delivered * 1e6, 2) if delivered else None,
                    "p50_ms": round(statistics.median(lat), 2),
                    "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
                    "sessions": totals.sessions,
                    "gaps": totals.gaps,
                    "duplicates": totals.duplicates,
                    "errors": totals.errors,
                    "refused": totals.refused,
                }
                last_events, last_cpu = totals.events, now["cpu_s"]
                samples.append(sample)
                print(json.dumps(sample), flush=True)
            stop.set()
            await asyncio.wait_for(clients, 90)
    finally:
        server.terminate()
        server.wait(30)
    out.with_suffix(".jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return report(args, samples, out)


def report(args: argparse.Namespace, samples: list[dict[str, object]], out: Path) -> int:
    if len(samples) < 2:
        print("too short to judge: fewer than two samples", file=sys.stderr)
        return 1
    first, last = samples[0], samples[-1]
    problems = []
    if last["gaps"] or last["duplicates"]:
        problems.append(f"{last['gaps']} gaps, {last['duplicates']} duplicates")
    if float(last["rss_mib"]) - float(first["rss_mib"]) > RSS_GROWTH_BOUND_MIB:  # type: ignore[arg-type]
        problems.append(f"RSS grew {first['rss_mib']} -> {last['rss_mib']} MiB")
    if int(last["threads"]) > int(first["threads"]):  # type: ignore[call-overload]
        problems.append(f"threads grew {first['threads']} -> {last['threads']}")
    if int(last["fds"]) > int(first["fds"]) + 2 * args.clients:  # type: ignore[call-overload]
        problems.append(f"descriptors grew {first['fds']} -> {last['fds']}")
    p99s = [float(s["p99_ms"]) for s in samples]  # type: ignore[arg-type]
    cpu = [s["cpu_us_per_delivery"] for s in samples if s["cpu_us_per_delivery"] is not None]
    lines = [
        f"# Soak, {args.minutes} min: {args.rate} events/s to {args.clients} clients joining"
        " and leaving",
        "",
        f"Command: `.venv/bin/python bench/soak.py --minutes {args.minutes} --rate {args.rate}"
        f" --clients {args.clients}`; server pinned to core 0, clients to core 1.",
        "",
        "| | first sample | last sample |",
        "| --- | --- | --- |",
        *(
            f"| {key} | {first[key]} | {last[key]} |"
            for key in ("rss_mib", "fds", "threads", "connections", "sessions", "errors")
        ),
        "",
        f"- client sessions opened: {last['sessions']}; events checked: "
        f"{sum(int(s['delivered']) for s in samples)}",  # type: ignore[call-overload]
        f"- gaps: {last['gaps']}, duplicates: {last['duplicates']}, refused: {last['refused']}",
        f"- p99 latency per minute: median {statistics.median(p99s):.1f} ms,"
        f" max {max(p99s):.1f} ms",
        f"- server CPU per delivery (all threads): median "
        f"{statistics.median(cpu) if cpu else 0:.2f} µs",  # type: ignore[type-var]
        f"- verdict: {'; '.join(problems) if problems else 'passed'}",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--clients", type=int, default=200, help="clients at any time")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
