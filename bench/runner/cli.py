"""``bench/run``: every scenario side by side in one run; JSON, Markdown and PNG results."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runner import plots, redis_bench, report
from runner.profile import profile
from runner.scenarios import SCENARIOS, Context, Record
from runner.servers import DEFAULT_SERVERS, SERVERS, Paths
from runner.settings import CLIENT_CORE, FULL, QUICK, SERVER_CORE, Settings
from runner.system import git_revision, loadavg, machine, pin_self, raise_nofile

DEFAULT_SCENARIOS = ["fanout", "idle", "chat", "micro", "kafka"]
# slow and storm take ~10 min more on the 2-core machine class, redis ~7 min: named, they run.
ALL_SCENARIOS = [*DEFAULT_SCENARIOS, "slow", "storm", "profile", "redis"]
SUMMARIES = {**report.SUMMARIES, "redis": redis_bench.summary}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Run the sessionstream benchmarks against the baselines, side by side,"
        " and write bench/results/<date>.{json,md} plus PNG plots.",
    )
    p.add_argument("--quick", action="store_true", help="small N, short steps (< 5 min)")
    p.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these (repeatable or a,b): {', '.join(ALL_SCENARIOS)}",
    )
    p.add_argument(
        "--servers",
        default=None,
        help="subset of s,p,a,r (default all four): (s) native delivery, (p) Python delivery,"
        " (a) seed-style baseline, (r) C++ reference; outside the default set: b ="
        " sse-starlette, g = (p) with the GC tuned (an experiment)",
    )
    p.add_argument("--transports", default=None, help="sse,ws (default: each scenario's own)")
    p.add_argument(
        "--connections", default=None, help="N for fanout/idle/profile, e.g. 1000 or 1000,10000"
    )
    p.add_argument("--repeats", type=int, default=None, help="repeats per point (3 full, 1 quick)")
    p.add_argument("--profile-rate", type=float, default=None, help="events/s for 'profile'")
    p.add_argument(
        "--p99-limit",
        default=None,
        help="fan-out ladder's p99 bound in ms: one value for every N, or N:MS pairs"
        " (default 0:50,10000:2000: 50 ms below 10,000 clients, 2 s from there)",
    )
    p.add_argument("--results", default=None, help="output directory (default bench/results)")
    p.add_argument(
        "--tag",
        default=None,
        help="suffix of the output names; default none for a full unfiltered run, 'quick'"
        " for --quick and 'custom' when servers/transports/connections/repeats are narrowed",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="niceness of servers and loadgen (default -10: ahead of other jobs on the"
        " shared cores; 0 to run at normal priority)",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the Markdown and plots from the existing JSON (same date and tag)",
    )
    args = p.parse_args(argv)
    names = [n for item in args.scenario for n in item.split(",") if n]
    unknown = set(names) - set(ALL_SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s) {sorted(unknown)}; choose from {ALL_SCENARIOS}")
    args.scenarios = names or DEFAULT_SCENARIOS
    args.servers_given = args.servers is not None
    if args.servers is None:
        args.servers = ",".join(DEFAULT_SERVERS)
    servers = [s for s in args.servers.split(",") if s]
    if not servers or set(servers) - set(SERVERS):
        p.error(f"--servers: choose from {','.join(SERVERS)}")
    args.server_list = servers
    return args


def parse_limits(text: str) -> tuple[tuple[int, float], ...]:
    if ":" not in text:
        return ((0, float(text)),)
    pairs = []
    for item in text.split(","):
        n, ms = item.split(":")
        pairs.append((int(n), float(ms)))
    pairs.sort()
    if pairs[0][0] != 0:
        pairs.insert(0, (0, pairs[0][1]))
    return tuple(pairs)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def ensure_loadgen(paths: Paths, logdir: Path) -> None:
    """Build loadgen and the C++ reference (incremental: a no-op when up to date)."""
    build = paths.root / "build/loadgen"
    log = (logdir / "build.log").open("ab")
    if not (build / "build.ninja").exists():
        subprocess.run(
            [
                "cmake",
                "-S",
                "bench/loadgen",
                "-B",
                "build/loadgen",
                "-G",
                "Ninja",
                "-DCMAKE_BUILD_TYPE=Release",
            ],
            cwd=paths.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    subprocess.run(
        ["cmake", "--build", "build/loadgen", "--target", "loadgen", "cpp_reference"],
        cwd=paths.root,
        stdout=log,
        stderr=subprocess.STDOUT,
        check=True,
    )


def load_existing(path: Path, mode: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except ValueError:
        return None
    return doc if doc.get("mode") == mode else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = Path(__file__).resolve().parents[2]
    paths = Paths.under(root)
    settings: Settings = QUICK if args.quick else FULL
    if args.repeats is not None:
        settings = settings.replace(repeats=args.repeats)
    if args.p99_limit is not None:
        settings = settings.replace(p99_limits=parse_limits(args.p99_limit))
    narrowed = (
        args.servers_given
        or args.transports is not None
        or args.connections is not None
        or args.repeats is not None
        or args.p99_limit is not None
    )
    tag = args.tag if args.tag is not None else ("quick" if args.quick else "")
    if args.tag is None and narrowed:
        tag = f"{tag}-custom" if tag else "custom"
    date = time.strftime("%Y-%m-%d")
    stem = f"{date}-{tag}" if tag else date
    results = Path(args.results) if args.results else root / "bench/results"
    results.mkdir(parents=True, exist_ok=True)
    logdir = root / "build/bench-logs" / time.strftime("%Y%m%d-%H%M%S")
    logdir.mkdir(parents=True, exist_ok=True)

    nofile = raise_nofile()
    pin_self(CLIENT_CORE)
    if args.report_only:
        args.scenarios = []
    else:
        ensure_loadgen(paths, logdir)
    connections = tuple(int(x) for x in args.connections.split(",")) if args.connections else None
    ctx = Context(
        paths=paths,
        settings=settings,
        logdir=logdir,
        servers=args.server_list,
        transports=args.transports.split(",") if args.transports else None,
        connections=connections,
        say=say,
        nice=args.nice,
        explicit_servers=args.servers_given,
    )
    json_path = results / f"{stem}.json"
    doc = load_existing(json_path, settings.mode) or {"scenarios": {}}
    if args.report_only and not doc["scenarios"]:
        say(f"nothing to report: {json_path} is missing or of another mode")
        return 1
    started = time.time()
    load_start = loadavg()
    command = shlex.join(["bench/run", *(sys.argv[1:] if argv is None else argv)])
    say(
        f"{settings.mode} run: {', '.join(args.scenarios)}; servers {','.join(args.server_list)};"
        f" RLIMIT_NOFILE {nofile}; load {load_start}; logs in {logdir}"
    )
    ran: dict[str, list[Record]] = {}
    for name in args.scenarios:
        t0 = time.time()
        load0 = loadavg()
        if name == "profile":
            records = profile(ctx, args.profile_rate, results, stem)
        elif name == "redis":
            records = redis_bench.run(ctx)
        else:
            records = SCENARIOS[name](ctx)
        ran[name] = records
        section: dict[str, Any] = {
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
            "duration_s": round(time.time() - t0, 1),
            "loadavg_start": load0,
            "loadavg_end": loadavg(),
            "servers": args.server_list,
            "settings": settings.__dict__,
            "records": records,
        }
        summarize = SUMMARIES.get(name)
        if summarize is not None:
            section["summary"] = summarize(records)
        if name == "fanout":
            section["steps"] = report.fanout_steps_summary(records)
        errors = [r["error"] for r in records if "error" in r]
        if errors:
            section["errors"] = errors
            for e in errors:
                say(f"  error: {e}")
        doc["scenarios"][name] = section
        say(f"{name} done in {section['duration_s']:.0f} s")

    summaries = {k: v.get("summary", []) for k, v in doc["scenarios"].items()}
    if ran:
        doc.update(
            {
                "date": date,
                "mode": settings.mode,
                "command": command.strip(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "last_run_duration_s": round(time.time() - started, 1),
                "loadavg_start": load_start,
                "loadavg_end": loadavg(),
                "machine": machine(),
                "git": git_revision(root),
                "pinning": {"server_core": SERVER_CORE, "client_core": CLIENT_CORE},
                "nice": args.nice,
                "nofile_limit": nofile,
            }
        )
    doc["goals"] = report.goals(summaries)
    images: dict[str, str] = {}
    if not args.no_plots:
        fan = doc["scenarios"].get("fanout", {})
        idle = doc["scenarios"].get("idle", {})
        if plots.fanout_plot(
            fan.get("records", []), fan.get("summary", []), results / f"{stem}-fanout.png"
        ):
            images["fanout"] = f"{stem}-fanout.png"
        if plots.cdf_plot(fan.get("records", []), results / f"{stem}-latency-cdf.png"):
            images["cdf"] = f"{stem}-latency-cdf.png"
        if plots.rss_plot(idle.get("records", []), results / f"{stem}-rss.png"):
            images["rss"] = f"{stem}-rss.png"
    doc["images"] = {**doc.get("images", {}), **images}
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md_path = results / f"{stem}.md"
    # Hand-written analysis kept beside the generated tables survives every rebuild.
    notes_path = results / f"{stem}.notes.md"
    notes = notes_path.read_text() if notes_path.exists() else ""
    md_path.write_text(markdown(doc, settings, notes))
    say(f"wrote {json_path}, {md_path}" + (f" and {len(images)} plot(s)" if images else ""))
    for g in doc["goals"]:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[g["met"]]
        say(f"  {verdict:6} {g['goal']}: {g['measured']}")
    return 0


def markdown(doc: dict[str, Any], settings: Settings, notes: str = "") -> str:
    sc = doc["scenarios"]
    m = doc["machine"]
    # Sections may come from several invocations with the same tag: name each command.
    by_command: dict[str, list[str]] = {}
    for name, section in sc.items():
        by_command.setdefault(section.get("command", doc["command"]).strip(), []).append(name)
    commands = "; ".join(f"`{c}` ({', '.join(names)})" for c, names in by_command.items())
    out: list[str] = [
        f"# Benchmark results {doc['date']} ({doc['mode']} run)",
        "",
        f"{commands} — commit `{doc['git'].get('commit', '')[:12]}`"
        + (" (with uncommitted changes)" if doc["git"].get("dirty") else "")
        + f"; finished {doc['finished']}; last invocation took"
        f" {doc['last_run_duration_s'] / 60:.1f} min.",
        "",
        f"Machine: {m['cpus']} × {m['cpu_model']}, Linux {m['kernel']}, Python {m['python']}."
        f" Server pinned to core {doc['pinning']['server_core']}, loadgen (and the runner) to"
        f" core {doc['pinning']['client_core']}, both at nice {doc.get('nice', 0)}; loopback;"
        f" RLIMIT_NOFILE {doc['nofile_limit']}."
        f" Load average (1/5/15 min) at start {doc['loadavg_start']}, at end"
        f" {doc['loadavg_end']}: other jobs shared these two cores, so every key point is"
        f" repeated ({settings.repeats}×, interleaved across servers) and medians are shown.",
        "",
        "Servers: **(s)** sessionstream with native delivery: the FastAPI stream routes"
        " decide each connection in Python, then hand its socket to the C++ engine (uvicorn"
        " with `--http sessionstream.server:HttpToolsHandoffProtocol --ws"
        " sessionstream.server:WebSocketsSansIOHandoffProtocol`); **(p)** the same app under"
        " plain uvicorn (`--http httptools`, default `--ws`), which offers no handoff, so it"
        " delivers in Python; **(a)** the seed-style baseline, one `asyncio.Queue(50)` per"
        " client (`bench/baselines/queue_server.py`); **(r)** the single-thread C++ Asio"
        " reference broadcaster (SSE and WebSocket). Python servers run uvicorn with uvloop."
        f" SSE heartbeat {settings.heartbeat:g} s on every server. The app of (s) and (p) is"
        " `bench/servers/sessionstream_server.py` with default engine settings (one engine"
        " thread).",
        "",
        "Server CPU per delivery = utime+stime of the server process over the measured"
        " interval ÷ deliveries. `/proc/PID/stat` of a process covers all its threads, the"
        " engine's included (each record keeps a per-thread check, `cpu_check_end`, and every"
        " thread's allowed CPUs: the whole process is pinned). Loopback TCP work partly runs"
        " in softirq and is not always charged to a process, so *core 0 µs/delivery*"
        " (everything core 0 did, other jobs included) is shown beside it as an upper bound.",
        "",
        "## Goals",
        "",
        report.goals_md(doc.get("goals", [])),
        "",
    ]
    if notes:
        out += [notes.strip(), ""]
    images = doc.get("images", {})
    fan = sc.get("fanout")
    if fan:
        st = fan["settings"]
        bounds = ", ".join(
            f"{ms:g} ms" + (f" from N = {n:,}" if n else "") for n, ms in st["p99_limits"]
        )
        out += [
            "## Fan-out",
            "",
            f"One channel, {st['event_bytes']}-byte events, N SSE or WebSocket clients. Each run"
            " connects N clients, idles (at the idle-memory N"
            f" {st['idle_hold']:g} s, else {st['fanout_hold']:g} s), warms up, then publishes for"
            f" {st['step_seconds']:g} s per step (measured until {st['step_tail']:g} s after),"
            f" starting at {report.num(st['ladder_start'])} deliveries/s (at least 1 event/s)"
            " and raising the rate by ×3 while both processes are nearly idle, down to ×1.19"
            f" near the bound, until p99 exceeds the bound ({bounds}), fewer than"
            f" {st['min_delivered']:.0%} of the expected deliveries arrive, or the server drops"
            " clients; then it bisects to within ~19%. The figure is the highest passing step;"
            " the other columns are at that step. With one write per client per event p99 has a"
            " floor of about N × (one send + one client read) whatever the rate: at 10,000"
            " clients one event takes every server here, the C++ reference included, well over"
            " 50 ms to reach the last client, and the Python servers 0.3–1.5 s, so a 50 ms"
            " bound would leave every column at 0. The wider bound there makes the ladder"
            " measure capacity; latency at 10,000 clients is read at the fixed point below and"
            " in the column *p99 at the lowest step*. Repeats: "
            f"{st['repeats']} at N < 10,000, {min(st['repeats'], st['repeats_large'])} from"
            " 10,000 (a median of two is their mean). *loadgen CPU* near 100% means the client,"
            " not the server, was the limit. Section took"
            f" {fan['duration_s'] / 60:.1f} min; load {fan['loadavg_start']} →"
            f" {fan['loadavg_end']}.",
            "",
            report.fanout_md(fan.get("summary", [])),
            "",
        ]
        pts = report.points_md(fan.get("summary", []))
        if pts:
            out += [
                "Steps outside the ladder, on the same connections before it (while every"
                " client is connected; the runner then waits until no delivery arrives for"
                " 0.5 s): the fixed points (the same rate for every server) and (r) at the"
                " highest rate (s) sustained in the same repeat (CPU per delivery at the same"
                " step).",
                "",
                pts,
                "",
            ]
        if "fanout" in images:
            out += [f"![fan-out]({images['fanout']})", ""]
        if "cdf" in images:
            out += [f"![latency CDFs]({images['cdf']})", ""]
        out += [
            "<details><summary>Every ladder step (medians over the repeats that ran it)</summary>",
            "",
            report.ladder_md(fan.get("steps", [])),
            "",
            "</details>",
            "",
        ]
    idle = sc.get("idle")
    if idle:
        st = idle["settings"]
        out += [
            "## Idle memory",
            "",
            "RSS growth per connection = (RSS after every client connected and"
            f" {st['idle_hold']:g} s idle with {st['heartbeat']:g} s heartbeats − RSS before"
            " connecting) ÷ connections. Figures come from the fan-out runs (before their"
            " first publish) when those ran with the same N. Section took"
            f" {idle['duration_s'] / 60:.1f} min.",
            "",
            report.idle_md(idle.get("summary", [])),
            "",
        ]
        if "rss" in images:
            out += [f"![RSS against connections]({images['rss']})", ""]
    slow = sc.get("slow")
    if slow:
        st = slow["settings"]
        out += [
            "## Slow consumers",
            "",
            f"{st['slow_connections']} SSE clients, {st['slow_bytes']:,}-byte events at"
            f" {st['slow_rate']:g}/s. Stall runs: {st['slow_fraction']:.0%} of the clients never"
            f" read ({st['slow_publish']:g} s of publishing), then read for {st['slow_drain']:g}"
            " s to learn how the server ended their stream. Reference runs: nobody stalls"
            f" ({st['slow_reference_publish']:g} s). Latency columns are the healthy clients'."
            " On loopback a stalled client soaks up ~4 MB of kernel send buffer before any"
            " server queue notices, and sessionstream then waits `send_timeout` (10 s) on a"
            " blocked send; hence the long stall runs. RSS bound for (s) = stalled × (mailbox"
            " 1 MiB + one 256 KiB batch + 64 KiB transport buffer). Section took"
            f" {slow['duration_s'] / 60:.1f} min.",
            "",
            report.slow_md(slow.get("summary", [])),
            "",
        ]
    storm = sc.get("storm")
    if storm:
        st = storm["settings"]
        out += [
            "## Reconnect storm",
            "",
            f"N clients connected, events published at {report.num(st['storm_deliveries'])}"
            " deliveries/s in total; after"
            f" {st['storm_before']:g} s every client drops its connection and reconnects at once"
            " with `Last-Event-ID` (WebSocket: `last_event_id` in the subscribe frame) while"
            f" publishing continues; observed until {st['storm_tail']:g} s after the last client"
            f" resumed (at most {st['storm_duration']:g} s). Resume gaps and"
            " duplicates are counted over everything the second connection received. The"
            " baselines ignore the id, so every event published while a client was away is a"
            f" gap. Section took {storm['duration_s'] / 60:.1f} min.",
            "",
            report.storm_md(storm.get("summary", [])),
            "",
        ]
    chat = sc.get("chat")
    if chat:
        st = chat["settings"]
        out += [
            "## Chat round trip",
            "",
            f"{st['chat_connections']:,} WebSocket clients subscribed to the channel;"
            f' {st["chat_fraction"]:.0%} of them send `{{"type":"echo","ts":<µs>}}`'
            f" {st['chat_rate']:g} times a second each. The servers answer through a message"
            ' handler (sessionstream: `@hub.message_handler("echo")` returning'
            ' `{"type":"echo","ts":<the same>}`; (a): its reader task replies); the'
            " round trip is the client's receive time minus the ts its reply echoes. Two"
            f" phases of {st['chat_seconds']:g} s on one set of connections: chat alone, then"
            f" chat while {st['chat_fanout_rate']:g} events/s fan out to every client. Section"
            f" took {chat['duration_s'] / 60:.1f} min.",
            "",
            report.chat_md(chat.get("summary", [])),
            "",
        ]
    micro = sc.get("micro")
    if micro:
        rec = micro["records"][0] if micro["records"] else {}
        out += [
            "## Native fan-out microbenchmark",
            "",
            "`build/default/fanout_bench`: publish → mailbox on one thread, no sockets"
            f" (binary built {rec.get('binary_mtime', '?')}). Repeated, each run reporting"
            " its median of 20 rounds; the median of those is shown.",
            "",
            report.micro_md(micro.get("summary", [])),
            "",
        ]
        if rec.get("error"):
            out += [f"Error: `{rec['error']}`", ""]
    if sc.get("redis"):
        out += redis_bench.markdown(sc["redis"])
    prof = sc.get("profile")
    if prof and prof["records"]:
        rec = prof["records"][0]
        out += ["## Profile of (s)", ""]
        if "error" in rec:
            out += [f"Error: `{rec['error']}`", ""]
        else:
            for name in ("plain", "perf_step", "cprofile_step"):
                step = rec.get(name)
                if step:
                    out.append(
                        f"- {name}: {report.num(step['deliveries_per_s'])} deliveries/s,"
                        f" p99 {step['latency_us']['p99'] / 1000:.1f} ms, server CPU"
                        f" {step['server_cpu_us_per_delivery']} µs/delivery"
                        f" ({step['server_cpu_share']:.0%} of core 0)"
                    )
            out += ["", "perf, by DSO:", "", "```", *rec.get("perf_by_dso", []), "```", ""]
            out += ["perf, by symbol:", "", "```", *rec.get("perf_by_symbol", []), "```", ""]
            out += ["cProfile, by own time:", "", "```", *rec.get("cprofile_tottime", []), "```"]
            out += [""]
    out += [
        "## Kafka end-to-end",
        "",
        "Not measured here: Kafka → `KafkaSource` → hub → clients is separate work. This"
        " section is a placeholder so the table has a place for it.",
        "",
        "## Reproduce",
        "",
        "```sh",
        "bench/run            # full run: fanout, idle, chat, micro",
        "bench/run --quick    # small N, short steps: checks the runner works",
        "bench/run --scenario fanout --servers s,r --connections 1000 --transports ws",
        "bench/run --scenario chat --tag ''   # one scenario, merged into the day's file",
        "bench/run --scenario redis --tag redis   # Redis pub/sub and two nodes: ~7 min",
        "```",
        "",
        "Raw numbers, every step and every repeat: the JSON file of the same name.",
        "",
    ]
    return "\n".join(out)
