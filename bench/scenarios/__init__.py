"""The scenarios of ``make bench``, in the order they run. Each is ``async def run(ctx)`` and
appends its rows to ``ctx.rows``."""

from bench.scenarios import e2e, footprint, http, intake, pulsar, scaleout

ALL = {
    "intake": intake.run,
    "e2e": e2e.run,
    "pulsar": pulsar.run,
    "http": http.run,
    "footprint": footprint.run,
    "scaleout": scaleout.run,
}

__all__ = ["ALL"]
