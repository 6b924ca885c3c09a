"""What each building block of one send-summary-email run costs, measured in this process on
the hub's own code: CPU time (all threads; robust to a busy machine) and wall time per call.

``python -m bench.costs [--n 300]`` prints one line per block. It is a diagnostic for the
scenarios' profiles, not a scenario: the hub is not running, only its parts are called.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from bench.procs import start_sink
from bench.scenarios.common import BODY, raw_message

__all__ = ["main"]


async def _measure(
    name: str, n: int, call: Callable[[int], Awaitable[Any] | Any]
) -> tuple[str, float, float]:
    for i in range(min(20, n)):  # warm caches (SQLAlchemy's statement cache among them)
        result = call(-1 - i)
        if asyncio.iscoroutine(result):
            await result
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n):
        result = call(i)
        if asyncio.iscoroutine(result):
            await result
    return name, (time.process_time() - cpu) / n * 1000, (time.perf_counter() - wall) / n * 1000


async def run(n: int, devnull: TextIO) -> list[tuple[str, float, float]]:
    import aiosmtplib
    import structlog

    from integrationhub.connectors.smtp.compose import html_to_text
    from integrationhub.connectors.smtp.connector import SendEmail
    from integrationhub.core import logs, templates
    from integrationhub.core.catalog import BUILTIN_FLOWS, load_flow_file, validate_parameters
    from integrationhub.core.schema import utcnow
    from integrationhub.core.store import StepOutcome, Store
    from integrationhub.models.flow import Flow
    from integrationhub.models.run import RunStatus, StepStatus

    workdir = Path(tempfile.mkdtemp(prefix="bench-costs-"))
    store = await Store.open(f"sqlite+aiosqlite:///{workdir / 'db.sqlite'}")
    flow = load_flow_file(BUILTIN_FLOWS / "send-summary-email.yaml")
    flow_json = flow.model_dump(mode="json")
    params = {"to": "recipient@example.com", "subject": "Summary", "body": BODY}
    runs: dict[int, str] = {}
    results = []

    async def create(i: int) -> None:
        run, _ = await store.create_run(flow=flow, parameters=params, idempotency_key=None)
        runs[i] = run.run_id

    step_input = flow.steps[0].input
    context = {"parameters": params, "run": {"id": "x", "flow_id": flow.id}, "steps": {}}
    blocks: list[tuple[str, Callable[[int], Any]]] = [
        ("store.get_flow (catalog.get, per trigger)", lambda i: _flow_lookup(store, flow.id)),
        ("validate_parameters (jsonschema)", lambda i: validate_parameters(flow, params)),
        ("store.create_run (3 inserts)", create),
        ("store.get_run", lambda i: store.get_run(runs[i])),
        ("store.mark_enqueued (one run; batched in the hub)",
         lambda i: store.mark_enqueued([runs[i]], deliveries=0, at=utcnow())),
        ("store.claim (flow parsed once per definition)",
         lambda i: store.claim(runs[i], owner="bench", lease=60)),
        ("  Flow.model_validate alone", lambda i: Flow.model_validate(flow_json)),
        ("store.cancel_requested", lambda i: store.cancel_requested(runs[i])),
        ("templates.render (step input)", lambda i: templates.render(step_input, context)),
        ("SendEmail validation (pydantic)", lambda i: SendEmail.model_validate(params)),
        ("store.start_step",
         lambda i: store.start_step(runs[i], "send", attempt=1, owner="bench", lease=60)),
        ("html_to_text (html.parser)", lambda i: html_to_text(BODY)),
        ("compose EmailMessage", lambda i: raw_message(f"c-{i}").as_bytes()),
        ("store.finish_step",
         lambda i: store.finish_step(
             runs[i],
             StepOutcome("send", StepStatus.succeeded, {"message_id": "<x>", "recipients": []}),
             owner="bench", lease=60)),
        ("store.finish_run",
         lambda i: store.finish_run(runs[i], owner="bench", status=RunStatus.succeeded)),
    ]  # fmt: skip
    for name, call in blocks:
        if name.startswith("store.create_run"):
            # create enough runs for the blocks that follow, the warm-up's included
            for i in range(-20, 0):
                await create(i)
        try:
            results.append(await _measure(name, n, call))
        except Exception as exc:  # the store's API moves; one block failing leaves the others
            results.append((f"{name}: {type(exc).__name__}: {exc}"[:110], float("nan"), 0.0))

    sink = await start_sink("smtp", workdir)
    try:

        async def send(i: int) -> None:
            await aiosmtplib.send(raw_message(f"s-{i}"), hostname="127.0.0.1", port=sink.port)

        results.append(await _measure("aiosmtplib.send, a connection each", n, send))
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port)
        await client.connect()

        async def reuse(i: int) -> None:
            await client.send_message(raw_message(f"k-{i}"))

        results.append(await _measure("aiosmtplib, one connection reused", n, reuse))
        await client.quit()
    finally:
        await sink.stop()

    logs.configure("INFO")
    handler = logging.getLogger().handlers[0]
    handler.setStream(devnull)
    log = structlog.get_logger()
    results.append(
        await _measure(
            "one structlog INFO line (JSON, redaction)",
            n,
            lambda i: log.info("step.succeeded", run_id="x" * 36, flow_id="send-summary-email"),
        )
    )
    await store.close()
    return results


async def _flow_lookup(store: Any, flow_id: str) -> None:
    from integrationhub.errors import FlowNotFound

    with contextlib.suppress(FlowNotFound):  # a built-in flow: looked up, then read from file
        await store.get_flow(flow_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with open(os.devnull, "w") as devnull:
        results = asyncio.run(run(args.n, devnull))
    width = max(len(name) for name, _, _ in results)
    print(f"{'block':{width}}  CPU ms/call  wall ms/call")
    for name, cpu, wall in results:
        print(f"{name:{width}}  {cpu:11.3f}  {wall:12.3f}")


if __name__ == "__main__":
    main()
