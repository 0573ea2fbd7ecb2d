"""What the runner reads from the machine: /proc CPU and memory, load, pinning, limits."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; children (servers, loadgen) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_self(core: int) -> None:
    # The runner polls and sleeps; keep it off the server's core.
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        pass


def set_autogroup_nice(pid: int, nice: int) -> bool:
    """With autogroup scheduling the CPU is shared between sessions first, so a process
    nice value alone does not put a benchmark process ahead of a compiler running in
    another session; the session's own autogroup nice does."""
    if not nice:
        return True
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
        return True
    except OSError:
        return False


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a server may fork workers)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                children = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                todo.extend(int(c) for c in children)
        except OSError:
            continue
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces: fields start after the last ')'.
        fields = raw[raw.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def _stat_fields(path: str) -> list[str]:
    raw = Path(path).read_text()
    return raw[raw.rindex(")") + 2 :].split()


def threads(pid: int) -> list[dict[str, object]]:
    """Every thread of ``pid``: name, the CPUs it may run on, its utime+stime (s)."""
    out: list[dict[str, object]] = []
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            comm = Path(f"{base}/comm").read_text().strip()
            allowed = ""
            for line in Path(f"{base}/status").read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    allowed = line.split(":", 1)[1].strip()
            fields = _stat_fields(f"{base}/stat")
        except (OSError, ValueError):
            continue
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        out.append({"tid": tid, "comm": comm, "cpus": allowed, "cpu_s": round(cpu, 3)})
    return out


def cpu_check(pid: int) -> dict[str, object]:
    """The process's utime+stime (what the runner charges) beside the sum over its live
    threads: the process figure covers every thread, so it is never below the sum (it
    also keeps the time of threads that have exited)."""
    ts = threads(pid)
    return {
        "process_cpu_s": round(cpu_seconds([pid]), 3),
        "threads_cpu_s": round(sum(float(t["cpu_s"]) for t in ts), 3),  # type: ignore[arg-type]
        "threads": len(ts),
        "cpus_allowed": sorted({str(t["cpus"]) for t in ts}),
    }


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            # statm field 2: resident pages; cheaper to parse than /proc/PID/status.
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass(frozen=True)
class CoreTimes:
    """Jiffies of one core from /proc/stat."""

    busy: int
    softirq: int
    total: int


def core_times() -> dict[int, CoreTimes]:
    out: dict[int, CoreTimes] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *vals = line.split()
        v = [int(x) for x in vals[:8]]
        user, nice, system, idle, iowait, irq, softirq, steal = v
        busy = user + nice + system + irq + softirq + steal
        out[int(name[3:])] = CoreTimes(busy, softirq, busy + idle + iowait)
    return out


def core_delta(before: dict[int, CoreTimes], after: dict[int, CoreTimes]) -> dict[str, float]:
    """Per-core busy and softirq shares between two readings (0..1)."""
    out: dict[str, float] = {}
    for core, a in after.items():
        b = before.get(core)
        if b is None:
            continue
        total = max(1, a.total - b.total)
        out[f"core{core}_busy"] = round((a.busy - b.busy) / total, 4)
        out[f"core{core}_softirq"] = round((a.softirq - b.softirq) / total, 4)
    return out


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine() -> dict[str, object]:
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mem_total_mib": int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        // 1024,
    }


def git_revision(root: Path) -> dict[str, object]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}


@dataclass
class Sampler:
    """Polls a server's RSS (and optionally another probe) on a thread, so peaks between
    the runner's own readings are seen."""

    pids: Callable[[], list[int]]
    period: float = 0.2
    probe: Callable[[], float | None] | None = None
    samples: list[tuple[float, int, float | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            extra = None
            probe = self.probe  # may be switched off from another thread
            if probe is not None:
                try:
                    extra = probe()
                except Exception:  # a slow or busy server must not stop sampling
                    extra = None
            self.samples.append((time.monotonic(), rss_bytes(self.pids()), extra))
            self._stop.wait(self.period)

    def max_rss(self, since: float = 0.0, until: float = float("inf")) -> int:
        values = [rss for t, rss, _ in self.samples if since <= t <= until]
        return max(values) if values else 0
