"""Drives one ``loadgen --marks`` process: the runner decides when each measured
interval starts and ends, so one set of connections serves a whole rate ladder."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

from runner.servers import nice_prefix
from runner.system import cpu_seconds, set_autogroup_nice


class LoadgenError(RuntimeError):
    pass


class Loadgen:
    def __init__(
        self,
        binary: Path,
        url: str,
        connections: int,
        *,
        core: int,
        log: Path,
        ramp: float = 2000,
        ws_channel: str | None = None,
        extra: list[str] | None = None,
        nice: int = 0,
    ) -> None:
        cmd = [
            *nice_prefix(nice),
            "taskset",
            "-c",
            str(core),
            str(binary),
            "--url",
            url,
            "--connections",
            str(connections),
            "--ramp",
            f"{ramp:g}",
            "--marks",
            "--quiet",
        ]
        if ws_channel is not None:
            cmd += ["--ws-subscribe", ws_channel]
        cmd += extra or []
        self.cmd = cmd
        self.connections = connections
        self._log = log.open("ab")
        self._log.write(f"\n=== {' '.join(cmd)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own autogroup, whose nice we set
        )
        set_autogroup_nice(self.proc.pid, nice)
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise LoadgenError(f"no answer from loadgen within {timeout:g} s") from None
        if line is None:
            code = self.proc.wait(5)
            raise LoadgenError(f"loadgen exited ({code}); see {self._log.name}")
        result: dict[str, Any] = json.loads(line)
        return result

    def _send(self, command: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise LoadgenError(f"loadgen is gone; see {self._log.name}") from None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid])

    def ready(self, timeout: float) -> dict[str, Any]:
        """Wait until every client has connected (or failed to)."""
        return self._next(timeout)

    def mark(self, timeout: float = 30) -> dict[str, Any]:
        """Close the current interval; its counters come back."""
        self._send("mark")
        return self._next(timeout)

    def finish(self, timeout: float) -> dict[str, Any]:
        """End the measured window; the tail (stall drain, reconnect storm) runs, then the
        final report comes back."""
        self._send("end")
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        result = self._next(timeout)
        self.proc.wait(10)
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
