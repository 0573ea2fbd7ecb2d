"""Where a sessionstream server spends its time during fan-out: (s) by default, the
first of ``--servers`` when given (e.g. ``--servers p`` for the Python delivery path).

Three steps at the same rate on one set of connections: plain (reference CPU figures),
under ``perf record`` (native and kernel time by DSO and symbol), and under cProfile
(Python time by function; ``POST /bench/profile`` on the benchmark server)."""

from __future__ import annotations

import io
import pstats
import re
import subprocess
import time
from pathlib import Path

from runner.measure import publish_step
from runner.scenarios import Context, Record, base_record, final_fields, guarded, session

PERF_FREQ = 999


def perf_available() -> bool:
    try:
        done = subprocess.run(
            ["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def perf_reports(data: Path) -> dict[str, str]:
    def report(*args: str) -> str:
        done = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--no-children", *args],
            capture_output=True,
            text=True,
            timeout=600,
        )
        return done.stdout

    return {
        "by_dso": report("--sort", "dso", "--percent-limit", "0.5"),
        "by_symbol": report("--sort", "dso,sym", "--percent-limit", "0.4", "-g", "none"),
        "callers": report(
            "--sort", "dso,sym", "--percent-limit", "3", "-g", "caller,0.5,callee,function,percent"
        ),
    }


def top_lines(text: str, limit: int) -> list[str]:
    rows = [ln for ln in text.splitlines() if re.match(r"^\s+\d+\.\d+%", ln)]
    return [re.sub(r"\s+", " ", r).strip() for r in rows[:limit]]


def pstats_text(path: Path, sort: str, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def profile(ctx: Context, rate: float | None, results: Path, stem: str) -> list[Record]:
    s = ctx.settings
    n = (ctx.connections or (1000,))[0]
    rate = rate or round(150_000 / n, 2)
    key = ctx.servers[0] if ctx.explicit_servers else "s"
    rec = base_record("profile", key, "sse", n, 0)
    rec["rate"] = rate
    seconds = max(4.0, s.step_seconds)

    def body() -> None:
        with session(ctx, key, "sse", n) as (srv, lg, sampler, ready):
            receivers = int(ready["connections_ok"])

            def step() -> Record:
                return publish_step(
                    srv,
                    lg,
                    sampler,
                    rate=rate,
                    seconds=seconds,
                    tail=s.step_tail,
                    size=s.event_bytes,
                    receivers=receivers,
                )

            step()  # warm-up
            rec["plain"] = step()
            if perf_available():
                data = ctx.logdir / "perf.data"
                perf = subprocess.Popen(
                    [
                        "perf",
                        "record",
                        "-e",
                        "cpu-clock",
                        "-F",
                        str(PERF_FREQ),
                        "-g",
                        "-p",
                        str(srv.pid),
                        "-o",
                        str(data),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(0.5)
                rec["perf_step"] = step()
                perf.send_signal(2)
                perf.wait(60)
                reports = perf_reports(data)
                for name, text in reports.items():
                    (results / f"{stem}-profile-perf-{name}.txt").write_text(text)
                rec["perf_by_dso"] = top_lines(reports["by_dso"], 25)
                rec["perf_by_symbol"] = top_lines(reports["by_symbol"], 40)
            else:
                rec["perf"] = "perf record unavailable"
            pstats_path = ctx.logdir / "sessionstream.pstats"
            srv.profile("start")
            rec["cprofile_step"] = step()
            srv.profile("stop", str(pstats_path))
            tottime = pstats_text(pstats_path, "tottime", 35)
            cumulative = pstats_text(pstats_path, "cumulative", 45)
            (results / f"{stem}-profile-cprofile.txt").write_text(
                "# sorted by tottime\n" + tottime + "\n# sorted by cumulative\n" + cumulative
            )
            rec["cprofile_tottime"] = [
                ln for ln in tottime.splitlines() if re.match(r"^\s+\d", ln)
            ][:30]
            rec["final"] = final_fields(lg.finish(timeout=60))

    return [guarded(rec, body)]
