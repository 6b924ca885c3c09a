"""Cron expressions in a time zone, and the slots they name (croniter and zoneinfo).

An expression has five fields (minute, hour, day of month, month, day of week), or six with
seconds first (``*/10 * * * * *``: every ten seconds); croniter's aliases (``@hourly``,
``@daily``, ``@weekly``, ``@monthly``, ``@yearly``) stand for five. A slot is a moment the
expression names, computed on the wall clock of the schedule's time zone and identified by its
UTC instant.

Daylight saving time, as croniter resolves it:

- a wall time that does not exist (the hour skipped in spring) is *shifted* to the first wall
  time after the gap when the expression names a fixed hour (``30 2 * * *`` in Europe/Berlin
  fires at 03:00 on that day), and *skipped* when the hour is a wildcard (``15 * * * *`` has
  no 02:15 that day and fires at 03:15 as usual);
- a wall time that occurs twice (the hour repeated in autumn) names two UTC instants, and each
  is a slot of its own: ``30 2 * * *`` fires twice that night, an hour apart, and an hourly
  expression fires every hour of the 25.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from croniter import croniter

__all__ = ["Cron", "check_expression", "zone"]

_ALIASES = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
# Any fixed moment will do to find out whether an expression names a moment at all.
_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


def check_expression(expression: str) -> str:
    """The expression, if croniter reads it and it names at least one moment; else ValueError
    with the reason."""
    fields = expression.split()
    if len(fields) == 1 and fields[0].startswith("@"):
        if fields[0].lower() not in _ALIASES:
            raise ValueError(f"{expression!r}: unknown alias; known: {', '.join(sorted(_ALIASES))}")
    elif len(fields) not in (5, 6):
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; a cron expression has 5 (minute hour "
            "day-of-month month day-of-week), or 6 with seconds first"
        )
    elif any(field.upper().startswith("H") for field in fields):
        raise ValueError(f"{expression!r}: hashed (H) fields are not supported")
    from croniter import CroniterBadCronError, CroniterBadDateError

    try:
        _croniter(expression, _REFERENCE).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"{expression!r} names no date that exists") from None
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise ValueError(f"{expression!r} is not a valid cron expression: {exc}") from None
    return expression


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Berlin``, ``UTC``); else ValueError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name, like 'Europe/Berlin'") from None


def _croniter(expression: str, start: datetime) -> croniter:
    # Imported with the first schedule, not at start: croniter and dateutil weigh about 5 MB.
    from croniter import croniter

    return croniter(expression, start, ret_type=datetime, second_at_beginning=True)


class Cron:
    """The slots of one expression in one time zone; moments in and out are UTC-aware."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = check_expression(expression)
        self.zone = zone(timezone)

    def __repr__(self) -> str:
        return f"Cron({self.expression!r}, {self.zone.key!r})"

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment``."""
        return next(self._iterate(moment))

    def slots(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """The slots in ``(after, until]``, in order."""
        for slot in self._iterate(after):
            if slot > until:
                return
            yield slot

    def latest(self, after: datetime, until: datetime) -> datetime | None:
        """The last slot in ``(after, until]``, or None: looked for in a window ending at
        ``until`` that doubles until it holds a slot, so neither a dense expression nor a long
        interval means stepping through every slot since ``after``."""
        span = timedelta(minutes=1)
        while True:
            start = max(after, until - span)
            found = None
            for slot in self.slots(start, until):
                found = slot
            if found is not None or start == after:
                return found
            span *= 2

    def _iterate(self, after: datetime) -> Iterator[datetime]:
        if after.tzinfo is None:
            raise ValueError("naive datetime")
        cron = _croniter(self.expression, after.astimezone(self.zone))
        while True:
            yield cron.get_next(datetime).astimezone(UTC)
