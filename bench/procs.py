"""Processes the bench starts and watches: sinks, helpers, and what ``/proc`` says of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Monitor",
    "Sink",
    "busy_cores",
    "children",
    "cpu_seconds",
    "free_port",
    "memory_mb",
    "pids_named",
    "start_sink",
    "terminate",
]

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and its high-water mark (VmRSS, VmHWM), in MB."""
    status = _status(pid)

    def mb(key: str) -> float:
        return int(status.get(key, "0 kB").split()[0]) / 1024

    return mb("VmRSS"), mb("VmHWM")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process, all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def system_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICK


async def busy_cores(window: float = 1.0) -> float:
    """How many cores were busy, on average, over the next ``window`` seconds."""
    before = system_busy_seconds()
    await asyncio.sleep(window)
    return (system_busy_seconds() - before) / window


def children(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` by pid, with their command names."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, rest = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(rest.split()[1]) == pid:
            found[int(entry.name)] = name.split("(", 1)[1]
    return found


@dataclass
class Monitor:
    """CPU time and peak resident memory of named processes while a measurement runs. A name
    may stand for every process of one command (``"postgres"``: the server and the backends it
    forks meanwhile), given in ``commands``; their CPU is summed, their memory not reported
    (shared memory would count once per backend)."""

    pids: dict[str, int]
    commands: dict[str, str] = field(default_factory=dict)
    interval: float = 0.25
    peak_mb: dict[str, float] = field(default_factory=dict)
    _cpu: dict[str, float] = field(default_factory=dict)
    _last_cpu: dict[str, float] = field(default_factory=dict)  # of a process that may exit
    _seen: dict[str, dict[int, tuple[float, float]]] = field(default_factory=dict)
    _system: float = 0.0
    _started: float = 0.0
    _task: asyncio.Task[None] | None = None

    def start(self) -> Monitor:
        self._started = time.monotonic()
        self._cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._seen = {name: {} for name in self.commands}
        self._look(initial=True)
        self._system = system_busy_seconds()
        self._task = asyncio.create_task(self._sample())
        return self

    def _look(self, *, initial: bool = False) -> None:
        for name, command in self.commands.items():
            seen = self._seen[name]
            for pid in pids_named(command):
                used = cpu_seconds(pid)
                first = seen[pid][0] if pid in seen else (used if initial else 0.0)
                seen[pid] = (first, used)

    async def _sample(self) -> None:
        while True:
            for name, pid in self.pids.items():
                rss, _ = memory_mb(pid)
                self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss)
                self._last_cpu[name] = max(self._last_cpu.get(name, 0.0), cpu_seconds(pid))
            self._look()
            await asyncio.sleep(self.interval)

    async def stop(self) -> dict[str, dict[str, float]]:
        """Per process: CPU seconds used, share of one core, peak RSS seen (MB); and under
        ``other``, the CPU that processes outside the measurement used meanwhile."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._look()
        elapsed = max(time.monotonic() - self._started, 1e-9)
        report: dict[str, dict[str, float]] = {}
        for name, pid in self.pids.items():
            now = max(cpu_seconds(pid), self._last_cpu.get(name, 0.0))
            used = now - self._cpu.get(name, 0.0)
            report[name] = {
                "cpu_s": round(used, 2),
                "cpu_pct": round(100 * used / elapsed, 1),
                "rss_peak_mb": round(self.peak_mb.get(name, 0.0), 1),
            }
        for name, seen in self._seen.items():
            used = sum(last - first for first, last in seen.values())
            report[name] = {"cpu_s": round(used, 2), "cpu_pct": round(100 * used / elapsed, 1)}
        other = system_busy_seconds() - self._system - sum(r["cpu_s"] for r in report.values())
        report["other"] = {"cpu_s": round(other, 2), "cpu_pct": round(100 * other / elapsed, 1)}
        return report


def pids_named(command: str) -> tuple[int, ...]:
    """Every process whose command name is ``command`` (e.g. PostgreSQL's ``postgres``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    found.append(int(entry.name))
            except OSError:
                continue
    return tuple(found)


@dataclass
class Sink:
    kind: str
    process: asyncio.subprocess.Process
    port: int
    control_port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    async def command(self, line: str) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port)
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            return (await reader.readline()).decode().strip()
        finally:
            writer.close()

    async def stop(self) -> None:
        await terminate(self.process)


async def start_sink(kind: str, log_dir: Path) -> Sink:
    """``python -m bench.sinks.<kind>`` in a process of its own, once it listens."""
    log = (log_dir / f"sink-{kind}.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"bench.sinks.{kind}",
        stdout=asyncio.subprocess.PIPE, stderr=log, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    log.close()
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    if not line.startswith(b"READY"):
        await terminate(process)
        raise RuntimeError(f"{kind} sink did not start: {line!r}; see {log_dir}")
    _, port, control_port = line.split()
    return Sink(kind, process, int(port), int(control_port))


async def terminate(process: asyncio.subprocess.Process, *, grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
