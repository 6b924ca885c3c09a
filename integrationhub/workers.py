"""Worker processes: runs executed beside the process that takes triggers, on other cores.

One Python process executes runs on one core. ``integrationhub serve`` with
``INTEGRATIONHUB_WORKER_PROCESSES=N`` starts N ``integrationhub worker`` processes pointed at
its engines, restarts one that exits, and stops them before its engines; each consumes the run
queue as any replica does, so the claim still keeps every run to one execution.
``integrationhub worker`` also runs on its own against shared engines, to scale execution apart
from the API.

Their metrics reach the hub's ``/metrics`` through prometheus_client's multiprocess mode:
``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a directory of its own before anything counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack

import structlog

from integrationhub.errors import IntegrationHubError
from integrationhub.settings import Settings

__all__ = ["WorkerProcesses", "run_worker", "shared_metrics"]

log = structlog.get_logger()

PARENT_VARIABLE = "INTEGRATIONHUB_WORKER_OF"  # the pid a started worker watches, and dies with
RESTART_DELAY = (1.0, 30.0)  # first and longest wait before a worker that exited is started again
STABLE_AFTER = 60.0  # a worker up this long starts its next restart from the first delay
STOP_GRACE = 10.0


class WorkerProcesses:
    """N worker processes, kept running until ``stop``."""

    def __init__(self, settings: Settings, environment: dict[str, str]) -> None:
        self.count = settings.worker_processes
        self._environment = {
            **os.environ,
            **environment,
            "INTEGRATIONHUB_WORKER_PROCESSES": "0",
            "INTEGRATIONHUB_MAIL_SINK": "false",
            PARENT_VARIABLE: str(os.getpid()),
        }
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * self.count
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        self._keepers = [
            asyncio.create_task(self._keep(index), name=f"worker-{index}")
            for index in range(self.count)
        ]

    async def stop(self) -> None:
        self._stopping = True
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        await asyncio.gather(
            *(_terminate(process) for process in self._processes if process is not None)
        )

    async def check(self) -> None:
        """For ``/health``: raise unless every worker process is running."""
        running = sum(1 for process in self._processes if process and process.poll() is None)
        if running < self.count:
            raise IntegrationHubError(f"{running} of {self.count} worker processes running")

    async def _keep(self, index: int) -> None:
        delay = RESTART_DELAY[0]
        while True:
            started = time.monotonic()
            process = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-m", "integrationhub", "worker"],
                stdin=subprocess.DEVNULL,
                env=self._environment,
                # A terminal's Ctrl-C reaches this process alone, which stops the workers
                # in order: after the API, before the engines they use.
                start_new_session=True,
            )
            self._processes[index] = process
            log.info("worker.started", worker=index, pid=process.pid)
            returncode = await asyncio.to_thread(process.wait)
            _forget_metrics_of(process.pid)
            if self._stopping:
                return
            if time.monotonic() - started > STABLE_AFTER:
                delay = RESTART_DELAY[0]
            log.error(
                "worker.exited", worker=index, pid=process.pid, code=returncode, restart_in=delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_DELAY[1])


async def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), STOP_GRACE)
        except TimeoutError:
            log.warning("worker.killed", pid=process.pid)
            process.kill()
            await asyncio.to_thread(process.wait)
    _forget_metrics_of(process.pid)


async def run_worker(settings: Settings) -> None:
    """The ``integrationhub worker`` process: execute runs until SIGTERM or SIGINT, or until
    the hub that started it is gone."""
    from integrationhub.backbone import Backbone
    from integrationhub.connectors.registry import Registry
    from integrationhub.core import logs
    from integrationhub.core.queue import RunQueue

    logs.configure(settings.log_level)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    async with AsyncExitStack() as stack:
        backbone = await Backbone.start(settings, Registry.from_entry_points(), stack)
        queue = RunQueue(bus=backbone.bus, store=backbone.store, settings=settings)
        await queue.start(backbone.engine, sweep=False)
        stack.push_async_callback(queue.stop)
        log.info("worker.ready", owner=backbone.engine.owner)
        parent = os.environ.get(PARENT_VARIABLE)
        while not stopped.is_set():
            if parent and os.getppid() != int(parent):
                log.warning("worker.orphaned", parent=parent)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), 1.0)
    log.info("worker.stopped")


@contextlib.contextmanager
def shared_metrics() -> Iterator[None]:
    """Count in a directory of files per process, for this process and every worker it
    starts. Entered before prometheus_client is first imported, which reads the variable."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("shared metrics must be set up before prometheus_client is imported")
    with tempfile.TemporaryDirectory(prefix="integrationhub-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _forget_metrics_of(pid: int) -> None:
    """Drop a dead worker's live gauges (runs in progress, broker connected); its counters
    stay counted."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
