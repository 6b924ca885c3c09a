"""Where a run's trigger-to-delivery time goes, from the hub's own record of it.

The hub writes a timestamp at each step of a run (``runs.created_at`` and the ``run_history``
rows ``running``, ``step.sending``, ``succeeded``); the bench knows when it sent the trigger and
when the sink received the email. Joined by run id (SQLite store only, read-only while the hub
runs), they split the latency into:

    accept     trigger sent        -> run row being created (HTTP, auth, flow lookup, validation)
    queue      run row created     -> run claimed            (insert, commit, publish to Pulsar,
                                                              broker delivery, worker free, claim)
    prepare    run claimed         -> step marked sending    (claim commit, credential, render)
    send       step marked sending -> email at the sink      (compose, SMTP session)
    finish     email at the sink   -> run finished           (QUIT, step and run commits; after
                                                              the delivery, but it holds a worker)
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import percentile

__all__ = ["SEGMENTS", "breakdown"]

# ``enqueued_at`` is no clock of the publish: the hub notes published runs in batches.
SEGMENTS = ("accept", "queue", "prepare", "send", "finish")


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def breakdown(
    database: Path, runs: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float | None]]:
    """p50/p99 in ms per segment. ``runs``: run id -> (trigger sent, email received), both in
    ``time.monotonic()`` seconds."""
    wall = time.time() - time.monotonic()  # one machine: the clocks differ by a constant
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = {}
        ids = list(runs)
        for first in range(0, len(ids), 500):
            chunk = ids[first : first + 500]
            marks = ",".join("?" * len(chunk))
            for run_id, created, finished in connection.execute(
                f"SELECT id, created_at, finished_at FROM runs WHERE id IN ({marks})", chunk
            ):
                rows[run_id] = {"created": created, "finished": finished}
            for run_id, event, at in connection.execute(
                f"SELECT run_id, event, at FROM run_history WHERE run_id IN ({marks}) "
                "AND event IN ('running', 'step.sending') ORDER BY id",
                chunk,
            ):
                rows.setdefault(run_id, {}).setdefault(event, at)  # the first of each
    finally:
        connection.close()
    spans: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    for run_id, (sent, received) in runs.items():
        row = rows.get(run_id, {})
        points = [
            sent + wall,
            _seconds(row.get("created")),
            _seconds(row.get("running")),
            _seconds(row.get("step.sending")),
            received + wall,
            _seconds(row.get("finished")),
        ]
        for name, start, end in zip(SEGMENTS, points, points[1:], strict=False):
            if start is not None and end is not None:
                spans[name].append(end - start)
    return {
        name: {
            "p50": None if (p := percentile(values, 50)) is None else round(p * 1000, 2),
            "p99": None if (p := percentile(values, 99)) is None else round(p * 1000, 2),
        }
        for name, values in spans.items()
    }
