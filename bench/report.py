"""Rows of the results table, percentiles, and the table and JSON they are written as."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Row", "machine", "percentile", "table", "write_json"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Row:
    """One line of the table. ``value`` is in ``unit``; latencies are in milliseconds."""

    scenario: str
    case: str
    value: float | None = None
    unit: str = ""
    n: int | None = None
    errors: int | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    target: str = ""
    verdict: str = ""  # "met", "MISSED", "skipped", "" (no target)
    delivered: str = ""  # "received/expected" at the sink, " FAIL" when not exactly that
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def hub_cpu_ms(self) -> float | None:
        """CPU the hub process(es) used per operation, in ms: robust to a busy machine, where
        wall-clock figures are not."""
        processes = self.details.get("processes") or {}
        if "raw" in self.case or "client" in self.case:  # the hub idles meanwhile
            return None
        used = [p["cpu_s"] for name, p in processes.items() if name.startswith("hub")]
        if not used or not self.n:
            return None
        return round(1000 * sum(used) / self.n, 2)

    def latencies(self, seconds: Sequence[float]) -> Row:
        self.p50, self.p95, self.p99 = (
            None if (p := percentile(seconds, q)) is None else round(p * 1000, 2)
            for q in (50, 95, 99)
        )
        return self


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(rows: Sequence[Row]) -> str:
    headers = ["scenario", "case", "n", "err", "value", "unit", "p50 ms", "p95 ms", "p99 ms",
               "hub CPU ms/op", "delivered", "target", "verdict"]  # fmt: skip
    body = [
        [
            r.scenario,
            r.case,
            "-" if r.n is None else str(r.n),
            "-" if r.errors is None else str(r.errors),
            _fmt(r.value, 2 if r.value is not None and abs(r.value) < 10 else 1),
            r.unit,
            _fmt(r.p50, 2),
            _fmt(r.p95, 2),
            _fmt(r.p99, 2),
            _fmt(r.hub_cpu_ms, 2),
            r.delivered or "-",
            r.target,
            r.verdict,
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]
    numeric = {2, 3, 4, 6, 7, 8, 9}

    def render(line: list[str]) -> str:
        cells = (
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        )
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    notes = [f"  {r.scenario}/{r.case}: {r.note}" for r in rows if r.note]
    return "\n".join(
        [render(headers), rule, *map(render, body)] + (["", "notes:", *notes] if notes else [])
    )


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        kb = 0
    try:
        kernel = subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip()
    except OSError:
        kernel = platform.release()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(kb / 1024 / 1024, 1),
        "kernel": kernel,
        "python": platform.python_version(),
    }


def write_json(directory: Path, rows: Sequence[Row], *, meta: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {"meta": meta, "rows": [asdict(r) | {"hub_cpu_ms": r.hub_cpu_ms} for r in rows]}
    path = directory / f"bench-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    (directory / "latest.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
