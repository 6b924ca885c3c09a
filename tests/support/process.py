"""Hub processes started the way operators start them (``integrationhub serve`` with
environment variables), for tests that need several replicas, or a replica killed mid-run.

Each process has its own data dir and log file (its stdout, structlog JSON lines) under the
test's ``tmp_path``; ``hub_processes`` stops every process it started when the test ends,
passed or failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.hub import API_KEY
from tests.support.smtp import SmtpSink, free_port

__all__ = ["HubProcess", "HubProcessError", "HubProcesses", "hub_env", "hub_processes"]

COMMAND = Path(sys.executable).with_name("integrationhub")
_TAIL_LINES = 40


class HubProcessError(Exception):
    """A hub process did not start, or did not stop, as it should."""


def hub_env(
    *,
    database_url: str,
    vault_addr: str,
    vault_token: str,
    pulsar_url: str,
    **overrides: str,
) -> dict[str, str]:
    """The variables every replica of one test shares: one store, one OpenBao (a path prefix
    of the test's own), one broker (topics of the test's own), one API key. ``overrides`` are
    further ``INTEGRATIONHUB_*`` variables, named without the prefix (``SWEEP_INTERVAL="1"``)."""
    suffix = uuid.uuid4().hex[:10]
    env = {
        "INTEGRATIONHUB_API_KEYS": API_KEY,
        "INTEGRATIONHUB_DATABASE_URL": database_url,
        "VAULT_ADDR": vault_addr,
        "VAULT_TOKEN": vault_token,
        "INTEGRATIONHUB_VAULT_PATH_PREFIX": f"tests/{suffix}",
        "INTEGRATIONHUB_PULSAR_URL": pulsar_url,
        "INTEGRATIONHUB_PULSAR_TRIGGERS_TOPIC": f"triggers-{suffix}",
        "INTEGRATIONHUB_PULSAR_RUNS_TOPIC": f"runs-{suffix}",
        "INTEGRATIONHUB_PULSAR_RUN_EVENTS_TOPIC": f"run-events-{suffix}",
        "INTEGRATIONHUB_PULSAR_DEAD_LETTER_TOPIC": f"dead-letter-{suffix}",
        "INTEGRATIONHUB_PULSAR_REDELIVERY_DELAY": "0.2",
        "INTEGRATIONHUB_SWEEP_INTERVAL": "0.5",
        "INTEGRATIONHUB_RUN_LEASE_SECONDS": "3",
    }
    env.update({f"INTEGRATIONHUB_{name}": value for name, value in overrides.items()})
    return env


class HubProcess:
    """One ``integrationhub serve`` process on 127.0.0.1, driven over its HTTP API."""

    def __init__(self, name: str, *, env: dict[str, str], directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.port = free_port()
        self.env = env | {"INTEGRATIONHUB_DATA_DIR": str(directory / "data")}
        self.log_path = directory / "stdout.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=30,
            # uvicorn closes a connection idle for 5 s; reusing one just then fails the
            # request (a POST is not retried), so give idle connections up sooner.
            limits=httpx.Limits(keepalive_expiry=2.0),
        )
        self._process: subprocess.Popen[bytes] | None = None
        # Another way to start it (``python -m uvicorn integrationhub.main:app ...``), for the
        # next start; by default ``integrationhub serve --host 127.0.0.1 --port <port>``.
        self.command: list[str] | None = None

    def __repr__(self) -> str:
        return f"<HubProcess {self.name} pid={self.pid} port={self.port}>"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    async def start(self, *, timeout: float = 60.0) -> None:
        """Spawn the process and return once ``/health`` says ok."""
        if self.running:
            raise HubProcessError(f"{self.name} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        # Nothing from the test's own environment may decide how the hub is configured.
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("INTEGRATIONHUB_", "VAULT_"))
        }
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.to_thread(
                subprocess.Popen,
                self.command
                or [str(COMMAND), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=inherited | self.env,
            )
        await self.wait_healthy(timeout=timeout)

    async def wait_healthy(self, *, timeout: float = 60.0) -> dict[str, Any]:
        """Poll ``/health`` until it answers ``ok``; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while time.monotonic() < deadline:
            if not self.running:
                raise HubProcessError(
                    f"{self.name} exited with code {self.returncode} before it was healthy\n"
                    f"{self.tail()}"
                )
            try:
                response = await self.client.get("/health", timeout=5)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                body = response.json()
                if response.status_code == 200 and body.get("status") == "ok":
                    return body  # type: ignore[no-any-return]
                last = f"{response.status_code} {body}"
            await asyncio.sleep(0.1)
        raise HubProcessError(
            f"{self.name} was not healthy within {timeout:g}s (last: {last})\n{self.tail()}"
        )

    async def wait_subscribed(self, *, timeout: float = 30.0) -> None:
        """Wait until the process consumes the run queue and the trigger topic. ``/health``
        does not wait for that: on pulsar-lite a second client's consumer may be refused once
        (consumer ids clash per subscription) and join a few seconds later."""
        for variable in ("RUNS_TOPIC", "TRIGGERS_TOPIC"):
            topic = f"persistent://public/default/{self.env[f'INTEGRATIONHUB_PULSAR_{variable}']}"
            await self.wait_for_event("bus.subscribed", timeout=timeout, topic=topic)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given back, no message acknowledged."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    async def stop(self, *, timeout: float = 20.0) -> int:
        """SIGTERM, as a service manager stops it; the exit status once it has exited (-15
        after a clean shutdown too: uvicorn raises the signal again once it is done). Killed,
        and HubProcessError raised, if it is still running after ``timeout`` seconds."""
        process = self._process
        if process is None:
            raise HubProcessError(f"{self.name} was never started")
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                raise HubProcessError(
                    f"{self.name} did not stop within {timeout:g}s of SIGTERM\n{self.tail()}"
                )
            await asyncio.sleep(0.05)
        return process.returncode

    async def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and close the client; never raises."""
        with contextlib.suppress(HubProcessError):
            if self.running:
                await self.stop(timeout=10)
        await self.client.aclose()

    def lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def tail(self, count: int = _TAIL_LINES) -> str:
        lines = self.lines()[-count:]
        return f"last {len(lines)} lines of {self.log_path}:\n" + "\n".join(lines)

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The process's structlog events so far (JSON lines), optionally of one name."""
        found = []
        for line in self.lines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and (event is None or entry.get("event") == event):
                found.append(entry)
        return found

    async def wait_for_event(
        self, event: str, *, timeout: float = 30.0, **fields: Any
    ) -> dict[str, Any]:
        """The first logged ``event`` whose fields include ``fields``, once it is logged."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.events(event):
                if all(entry.get(key) == value for key, value in fields.items()):
                    return entry
            if time.monotonic() > deadline:
                raise HubProcessError(
                    f"{self.name} did not log {event} {fields} within {timeout:g}s\n{self.tail()}"
                )
            await asyncio.sleep(0.1)

    async def put_smtp_credential(self, smtp: SmtpSink, *, domain: str = "example.org") -> None:
        """``smtp-credentials``, pointing at the test's SMTP server, sending as hub@``domain``."""
        response = await self.client.put(
            "/api/v1/credentials/smtp-credentials",
            json={
                "type": "smtp",
                "data": {
                    "host": smtp.host,
                    "port": smtp.port,
                    "security": "none",
                    "from_address": f"hub@{domain}",
                },
            },
        )
        assert response.status_code in (200, 201), response.text

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples in ``/metrics`` that carry ``labels``."""
        text = (await self.client.get("/metrics")).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, label_text = series.partition("{")
            if metric != name:
                continue
            if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
                total += float(value)
        return total


class HubProcesses:
    """The hub processes of one test; ``start`` adds and starts them together."""

    def __init__(self, directory: Path, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.env = env or {}
        self.processes: list[HubProcess] = []

    async def start(
        self, *names: str, env: dict[str, str] | None = None, timeout: float = 60.0
    ) -> list[HubProcess]:
        """Start a process for each name, with ``env`` (from now on) or the one before."""
        if env is not None:
            self.env = env
        started = [
            HubProcess(name, env=self.env, directory=self.directory / name) for name in names
        ]
        self.processes.extend(started)
        await asyncio.gather(*(process.start(timeout=timeout) for process in started))
        return started

    def by_pid(self, pid: int) -> HubProcess:
        for process in self.processes:
            if process.pid == pid:
                return process
        raise LookupError(f"no hub process has pid {pid}: {self.processes}")

    async def close(self) -> None:
        await asyncio.gather(*(process.close() for process in self.processes))


@asynccontextmanager
async def hub_processes(
    directory: Path, env: dict[str, str] | None = None
) -> AsyncIterator[HubProcesses]:
    processes = HubProcesses(directory, env)
    try:
        yield processes
    finally:
        await processes.close()
