"""The hub as the README starts it: ``integrationhub serve`` in a process of its own.

``make run`` is ``INTEGRATIONHUB_MAIL_SINK=... .venv/bin/integrationhub serve``; the bench runs
that command directly (so the pid it watches is the hub's, not make's) with its own data dir,
port and API key, the local mail sink off, and ``smtp-credentials`` put through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.procs import ROOT, children, free_port, terminate

__all__ = ["HubProcess"]

BIN = ROOT / ".venv" / "bin"


@dataclass
class HubProcess:
    name: str
    process: asyncio.subprocess.Process
    port: int
    key: str
    data_dir: Path
    log_path: Path
    startup_seconds: float = 0.0
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(
        cls,
        workdir: Path,
        *,
        name: str = "hub",
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        key: str | None = None,
        ready_timeout: float = 90.0,
    ) -> HubProcess:
        """Start the hub; return once ``/health`` answers ``ok`` for every component."""
        data_dir = data_dir or workdir / name
        port = free_port()
        key = key or secrets.token_urlsafe(24)
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("INTEGRATIONHUB_", "VAULT_", "BAO_"))
        }
        clean.update(
            INTEGRATIONHUB_DATA_DIR=str(data_dir),
            INTEGRATIONHUB_PORT=str(port),
            INTEGRATIONHUB_API_KEYS=key,
            INTEGRATIONHUB_MAIL_SINK="false",
        )
        clean.update(env or {})
        log_path = workdir / f"{name}.log"
        with log_path.open("ab") as log:
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                str(BIN / "integrationhub"), "serve",
                stdout=log, stderr=asyncio.subprocess.STDOUT, env=clean, cwd=workdir,
            )  # fmt: skip
        hub = cls(name, process, port, key, data_dir, log_path)
        try:
            hub.health = await hub._wait_healthy(ready_timeout)
        except BaseException:
            await hub.stop()
            raise
        hub.startup_seconds = time.monotonic() - started
        return hub

    async def _wait_healthy(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited; see {self.log_path}")
                try:
                    response = await client.get("/health")
                    if response.status_code == 200 and response.json()["status"] == "ok":
                        return dict(response.json())
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} not healthy in {timeout}s; see {self.log_path}"
                    )
                await asyncio.sleep(0.02)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30.0,
        )

    async def put_smtp_credential(self, port: int) -> None:
        async with self.client() as client:
            response = await client.put(
                "/api/v1/credentials/smtp-credentials",
                json={
                    "type": "smtp",
                    "data": {
                        "host": "127.0.0.1",
                        "port": port,
                        "security": "none",
                        "from_address": "hub@bench.localdomain",
                    },
                },
            )
            response.raise_for_status()

    def log_events(self, *names: str) -> dict[str, Any]:
        """The last log record of each named event, e.g. ``pulsar.embedded.ready``."""
        found: dict[str, Any] = {}
        with self.log_path.open("rb") as log:
            for line in log:
                if not line.startswith(b"{"):
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") in names:
                    found[record["event"]] = record
        return found

    def count_events(self, name: str) -> int:
        needle = f'"event": "{name}"'.encode()
        with self.log_path.open("rb") as log:
            return sum(1 for line in log if needle in line)

    def engines(self) -> dict[str, int]:
        """The processes this hub runs: its embedded engines and its worker processes,
        ``{"pulsar-lite": pid, "openbao": pid, "hub-worker-0": pid}``."""
        found = {}
        for pid, command in sorted(children(self.pid).items()):
            if "pulsar" in command:
                found["pulsar-lite"] = pid
            elif "bao" in command:
                found["openbao"] = pid
            elif "python" in command:  # `python -m integrationhub worker`
                found[f"hub-worker-{sum(k.startswith('hub-worker') for k in found)}"] = pid
        return found

    async def stop(self) -> None:
        engines = self.engines()
        await terminate(self.process, grace=30)
        for pid in engines.values():  # never left behind, even if the hub was killed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)
