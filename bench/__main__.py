"""``python -m bench [--quick] [--only NAME ...] [--profile]``: run the scenarios, print one
table, write it as JSON under ``bench/results/``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import structlog

from bench.procs import busy_cores
from bench.report import Row, machine, table, write_json
from bench.scenarios import ALL
from bench.scenarios.common import QUICK, Context, Sizes

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few hundred")
    parser.add_argument("--only", nargs="+", choices=list(ALL), metavar="NAME",
                        help=f"run only these scenarios: {', '.join(ALL)}")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="also record py-spy profiles of the hub under load")  # fmt: skip
    parser.add_argument("--scaleout-store", choices=["postgresql", "sqlite"], default="postgresql",
                        help="the store both hubs share in scale-out")  # fmt: skip
    parser.add_argument("--worker-processes", type=int, default=0, metavar="N",
                        help="start the hub with INTEGRATIONHUB_WORKER_PROCESSES=N (scenarios "
                        "on the standard hub: intake, e2e, pulsar, http)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    parser.add_argument("--wait-quiet", type=float, default=120.0, metavar="SECONDS",
                        help="before each scenario, wait up to this long for other processes "
                        "to leave the CPU idle (the figures are only as good as the machine's "
                        "quiet)")  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    # The embedded engines' supervisors log through structlog; the bench prints its own lines.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sizes = QUICK if args.quick else Sizes()
    workdir = Path(tempfile.mkdtemp(prefix="integrationhub-bench-"))
    ctx = Context(
        sizes=sizes,
        workdir=workdir,
        results_dir=args.results,
        profile=args.profile,
        scaleout_store=args.scaleout_store,
        worker_processes=args.worker_processes,
    )
    args.results.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    failed = []
    background: dict[str, float] = {}
    for name in args.only or list(ALL):
        background[name] = asyncio.run(_wait_quiet(ctx, args.wait_quiet))
        ctx.say(f"scenario {name} (other processes busy: {background[name]:.2f} cores)")
        first = len(ctx.rows)
        try:
            asyncio.run(ALL[name](ctx))
        except Exception as exc:  # one broken scenario must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            ctx.rows.append(
                Row(name, "error", verdict="ERROR", note=f"{type(exc).__name__}: {exc}")
            )
        _flag_disturbed(ctx.rows[first:])
    meta = {
        "mode": "quick" if args.quick else "full",
        "sizes": asdict(sizes),
        "worker_processes": args.worker_processes,
        "machine": machine(),
        "duration_s": round(time.monotonic() - started, 1),
        "background_cores_before_scenario": background,
        "workdir": str(workdir) if args.keep else None,
    }
    print(table(ctx.rows))
    path = write_json(args.results, ctx.rows, meta=meta)
    print(f"\nwritten: {path}  (machine: {meta['machine']}, {meta['duration_s']} s)")
    if args.keep:
        print(f"work dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


QUIET_CORES = 0.25  # busy cores, all other processes together, that count as quiet
DISTURBED_PCT = 25.0  # other processes' CPU during a measurement, in % of one core


async def _wait_quiet(ctx: Context, limit: float) -> float:
    """Wait until the machine is quiet (or ``limit`` seconds); the busy cores last seen."""
    deadline = time.monotonic() + limit
    busy = await busy_cores(2.0)
    while busy > QUIET_CORES and time.monotonic() < deadline:
        ctx.say(f"waiting for quiet: other processes keep {busy:.2f} cores busy")
        busy = await busy_cores(5.0)
    return busy


def _flag_disturbed(rows: list[Row]) -> None:
    for row in rows:
        other = row.details.get("processes", {}).get("other", {}).get("cpu_pct", 0.0)
        if other > DISTURBED_PCT:
            row.note = (row.note + "; " if row.note else "") + (
                f"DISTURBED: other processes used {other:.0f}% of a core meanwhile"
            )


if __name__ == "__main__":
    sys.exit(main())
