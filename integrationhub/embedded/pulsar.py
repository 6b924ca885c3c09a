"""The pulsar-lite broker the hub runs itself when no ``INTEGRATIONHUB_PULSAR_URL`` is set.

pulsar-lite (the ``pulsar-lite`` package) is one Rust binary that speaks the Pulsar binary
protocol over RocksDB, so the official client and the same ``Bus`` code serve the embedded and
the clustered case. The package's own ``ProcessManager`` is not used: it prints, logs to /tmp
and is a process-wide singleton.

Set-up notes and quirks, in one place:

- Everything lives in ``<data_dir>/pulsar/``: the store (``--db-path X`` writes ``X.rocksdb``),
  the config, the log and the pid file.
- Without a config file it reads ``./pulsar-lite.toml`` and serves Prometheus metrics on
  ``0.0.0.0:8080``; we always pass our own config, which turns that endpoint off (the hub has
  its own ``/metrics``).
- A pid file says which broker last ran on this store; an ``flock`` held while a hub runs tells
  a live hub's broker (leave it, refuse to start) from a stale one whose hub died (stop it: a
  second broker cannot open the same RocksDB store).
- The broker runs in a session of its own, so Ctrl-C reaches the hub, which stops it in order.
  Every wait polls with ``asyncio.sleep`` and nothing binds to an event loop, so one instance
  can be started on one loop and stopped on another (test fixtures do).
- The port is picked free on the first start (or given) and kept, so a restarted broker has
  the same URL and connected clients find it again.
- Known broker limitation (0.2.0): consumer ids are unique per subscription, not per
  connection, so two clients whose consumers got the same id cannot both join one subscription;
  the second is refused and retries (``Bus`` resubscribes with a fresh id). One hub process has
  one client, so only tests and tools with several clients meet it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from integrationhub.errors import ConfigurationError

__all__ = ["EmbeddedPulsar"]

log = structlog.get_logger()

_HOST = "127.0.0.1"
_POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 20
_CONFIG = "# written by IntegrationHub on every start\n[metrics]\nenabled = false\n"


class EmbeddedPulsar:
    """One pulsar-lite process with its store, config, log and pid file in ``data_dir/pulsar``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        binary: str | None = None,
        log_level: str = "warn",
        ready_timeout: float = 20.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.root = Path(data_dir).resolve() / "pulsar"
        self.port = port
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._log_offset = 0

    @property
    def config_path(self) -> Path:
        return self.root / "pulsar-lite.toml"

    @property
    def log_path(self) -> Path:
        return self.root / "pulsar-lite.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "pulsar-lite.pid"

    @property
    def url(self) -> str:
        if self.port is None:
            raise ConfigurationError("the embedded Pulsar broker has not been started yet")
        return f"pulsar://{_HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def start(self) -> str:
        """Start the broker; return its URL once it accepts connections."""
        if self.running:
            return self.url
        binary = self._binary or _find_binary()
        await asyncio.to_thread(self._prepare)
        self._lock_fd = await asyncio.to_thread(self._acquire_lock)
        try:
            await self._stop_stale()
            self._process = await self._spawn(binary)
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log.info("pulsar.embedded.ready", url=self.url, pid=self._process.pid)
        return self.url

    async def stop(self) -> None:
        """Terminate the broker, killing it if it ignores SIGTERM for ``stop_timeout`` s."""
        process, self._process = self._process, None
        try:
            if process is not None:
                await _terminate(process, grace=self.stop_timeout)
                self.pid_path.unlink(missing_ok=True)
                log.info("pulsar.embedded.stopped", pid=process.pid)
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing releases the flock
                self._lock_fd = None

    async def __aenter__(self) -> EmbeddedPulsar:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(_CONFIG)

    def _acquire_lock(self) -> int:
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigurationError(
                f"another IntegrationHub process runs the embedded Pulsar broker in {self.root}; "
                "stop it or use another data dir"
            ) from None
        return fd

    async def _stop_stale(self) -> None:
        """Stop the broker a dead hub left running on this store, if any."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        if _is_broker_for(pid, self.config_path):
            log.warning("pulsar.embedded.stale_broker.stopping", pid=pid, data_dir=str(self.root))
            for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if await _wait_for(lambda: not _is_broker_for(pid, self.config_path), within=wait):
                    break
            else:
                raise ConfigurationError(f"could not stop the stale pulsar-lite (pid {pid})")
        self.pid_path.unlink(missing_ok=True)

    async def _spawn(self, binary: str) -> subprocess.Popen[bytes]:
        if self.port is None:
            self.port = _free_port()
        elif not await _wait_for(lambda: _port_is_free(self.port), within=5.0):
            # A broker that was just stopped may hold it for a few ms more.
            raise ConfigurationError(f"port {self.port} on {_HOST} is taken by another program")
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            binary,
            "--config", str(self.config_path),
            "--addr", f"{_HOST}:{self.port}",
            "--db-path", str(self.root / "broker"),
            "--log-level", self.log_level,
        ]  # fmt: skip
        with self.log_path.open("ab") as log_file:
            process = await asyncio.to_thread(
                subprocess.Popen,
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{process.pid}\n")
        return process

    async def _wait_ready(self) -> None:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise self._failure(f"exited with code {self._process.returncode}")
            if await _accepts_connections(self.port):
                return
            await asyncio.sleep(_POLL_INTERVAL)
        raise self._failure(f"did not accept connections within {self.ready_timeout:g} s")

    def _failure(self, reason: str) -> ConfigurationError:
        try:
            with self.log_path.open("rb") as file:
                file.seek(self._log_offset)
                lines = file.read().decode(errors="replace").splitlines()
        except OSError:
            lines = []
        tail = "\n".join(lines[-_LOG_TAIL_LINES:]) or "(nothing logged)"
        return ConfigurationError(
            f"embedded pulsar-lite on {_HOST}:{self.port} {reason}; "
            f"last lines of {self.log_path}:\n{tail}"
        )


def _find_binary() -> str:
    try:
        from pulsar_lite.binary_finder import find_pulsar_lite_binary
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded broker needs the pulsar-lite package (pip install pulsar-lite); "
            "or set INTEGRATIONHUB_PULSAR_URL to a Pulsar cluster"
        ) from exc
    try:
        return find_pulsar_lite_binary()
    except FileNotFoundError as exc:
        raise ConfigurationError(str(exc)) from exc


async def _terminate(process: subprocess.Popen[bytes], *, grace: float) -> None:
    if process.poll() is None:
        process.terminate()
        if not await _wait_for(lambda: process.poll() is not None, within=grace):
            log.warning("pulsar.embedded.killed", pid=process.pid)
            process.kill()
    await asyncio.to_thread(process.wait)


def _is_broker_for(pid: int, config_path: Path) -> bool:
    """Whether ``pid`` is a live pulsar-lite on this config, not a recycled pid."""
    if sys.platform.startswith("linux"):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return str(config_path).encode() in args  # a zombie's cmdline is empty
    ps = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return f"--config {config_path}" in ps.stdout


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
        # As the broker's own listener does: a just-stopped broker's TIME_WAIT sockets do not
        # keep a restart off its port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


async def _wait_for(done: Callable[[], bool], *, within: float) -> bool:
    """Poll ``done`` until it holds or ``within`` seconds pass; there is nothing to await."""
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_INTERVAL)
    return True
