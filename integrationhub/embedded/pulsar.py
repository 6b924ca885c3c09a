"""Supervise the pulsar-lite broker that the hub runs when no Pulsar URL is configured.

pulsar-lite (the ``pulsar-lite`` package) is a single Rust binary that speaks the Pulsar binary
protocol over a RocksDB store, so the official client and the same ``Bus`` code serve both the
embedded and the clustered case. The package's own ``ProcessManager`` is not used: it prints,
logs to /tmp and is a process-wide singleton.

Quirks handled here, in one place:

- ``--db-path X`` stores into ``X.rocksdb``; we keep it under ``<data_dir>/pulsar/``.
- It serves Prometheus metrics on ``0.0.0.0:8080`` unless told otherwise, and reads
  ``./pulsar-lite.toml`` by default; we always pass our own config file, which turns that
  endpoint off (the hub has its own ``/metrics``).
- Opening the store twice fails, so a broker left behind by a hub that was killed is found by
  its pid file and stopped before a new one starts.

Every wait polls with ``asyncio.sleep`` and never binds to an event loop, so one instance can
be started on one loop and stopped on another (test fixtures do).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from integrationhub.errors import ConfigurationError

__all__ = ["EmbeddedPulsar"]

log = structlog.get_logger()

_HOST = "127.0.0.1"
_POLL = 0.05
_CONFIG = "[metrics]\nenabled = false\n"


class EmbeddedPulsar:
    """One pulsar-lite process with its store, config, log and pid file in ``data_dir``.

    ``port=None`` picks a free port on the first start and keeps it, so a restarted broker
    has the same URL and connected clients find it again.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        binary: str | None = None,
        log_level: str = "warn",
        startup_timeout: float = 20.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self._binary = binary
        self._log_level = log_level
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "pulsar"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "pulsar-lite.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "pulsar-lite.pid"

    @property
    def url(self) -> str:
        if self.port is None:
            raise ConfigurationError("the embedded Pulsar broker has not been started")
        return f"pulsar://{_HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def start(self) -> str:
        """Start the broker and return its URL once it accepts connections."""
        if self.running:
            return self.url
        binary = self._binary or _find_binary()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "pulsar-lite.toml"
        config.write_text(_CONFIG)
        await self._stop_stale(binary)
        if self.port is None:
            self.port = _free_port()
        elif not _port_is_free(self.port):
            raise ConfigurationError(
                f"port {self.port} on {_HOST} is taken; the embedded Pulsar broker needs it"
            )
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        command = [
            binary,
            "--config", str(config),
            "--addr", f"{_HOST}:{self.port}",
            "--db-path", str(self.store_dir / "broker"),
            "--log-level", self._log_level,
        ]  # fmt: skip
        with self.log_file.open("ab") as log_stream:
            # A session of its own: Ctrl-C reaches the hub, which then stops the broker
            # in order instead of both dying at once.
            self._process = await asyncio.to_thread(
                subprocess.Popen,
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_stream,
                stderr=subprocess.STDOUT,
                cwd=self.store_dir,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._process.pid}\n")
        try:
            await self._wait_ready(log_offset)
        except BaseException:
            await self.stop()
            raise
        log.info("pulsar.embedded.started", url=self.url, pid=self._process.pid)
        return self.url

    async def stop(self) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after ``stop_timeout``."""
        process, self._process = self._process, None
        if process is not None:
            await _terminate(process, timeout=self._stop_timeout)
            log.info("pulsar.embedded.stopped", pid=process.pid)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    async def __aenter__(self) -> EmbeddedPulsar:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _wait_ready(self, log_offset: int) -> None:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConfigurationError(
                    f"pulsar-lite exited with code {self._process.returncode} before accepting "
                    f"connections; log {self.log_file}:\n{self._log_tail(log_offset)}"
                )
            if await _accepts_connections(self.port):
                return
            await asyncio.sleep(_POLL)
        raise ConfigurationError(
            f"pulsar-lite did not accept connections on {_HOST}:{self.port} within "
            f"{self._startup_timeout:g}s; log {self.log_file}:\n{self._log_tail(log_offset)}"
        )

    async def _stop_stale(self, binary: str) -> None:
        """Stop a broker that a killed hub left running on our store, found by its pid file."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        command_line = _command_line(pid) or ""
        if Path(binary).name in command_line and str(self.store_dir) in command_line:
            log.warning("pulsar.embedded.stale_process", pid=pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not await _poll(lambda: _command_line(pid) is None, timeout=self._stop_timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                await _poll(lambda: _command_line(pid) is None, timeout=self._stop_timeout)
        self.pid_file.unlink(missing_ok=True)

    def _log_tail(self, offset: int, *, lines: int = 20) -> str:
        try:
            with self.log_file.open("rb") as stream:
                stream.seek(offset)
                text = stream.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _find_binary() -> str:
    try:
        from pulsar_lite.binary_finder import find_pulsar_lite_binary
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded broker needs the pulsar-lite package (pip install pulsar-lite), "
            "or set INTEGRATIONHUB_PULSAR_URL"
        ) from exc
    try:
        return find_pulsar_lite_binary()
    except FileNotFoundError as exc:
        raise ConfigurationError(str(exc)) from exc


async def _terminate(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        if not await _poll(lambda: process.poll() is not None, timeout=timeout):
            log.warning("pulsar.embedded.killed", pid=process.pid)
            process.kill()
    await asyncio.to_thread(process.wait)


async def _poll(done: Callable[[], bool], *, timeout: float) -> bool:
    """Poll until ``done()`` or ``timeout``: a process we did not start gives nothing to await."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


async def _accepts_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(_HOST, port), timeout=1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def _command_line(pid: int) -> str | None:
    """The command line of a live process, or None; zombies count as gone."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return None
            return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            return None
    if not Path("/proc/self").is_dir():  # macOS and BSDs: no /proc
        result = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() or None
    return None
