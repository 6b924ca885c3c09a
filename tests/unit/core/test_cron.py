"""Slots of cron expressions in time zones, daylight saving time included; "now" is always given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest

from integrationhub.core.cron import Cron, check_expression, zone

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


def following(cron: Cron, after: datetime, count: int) -> list[datetime]:
    slots, moment = [], after
    for _ in range(count):
        moment = cron.next_after(moment)
        slots.append(moment)
    return slots


def test_weekday_mornings_on_berlin_time_are_utc_instants():
    cron = Cron("0 9 * * 1-5", "Europe/Berlin")

    # Friday 2026-03-06 10:00 in Berlin: next is Monday 09:00 (CET, UTC+1).
    slots = following(cron, local(BERLIN, 2026, 3, 6, 10, 0), 2)

    assert slots == [utc(2026, 3, 9, 8, 0), utc(2026, 3, 10, 8, 0)]
    assert all(slot.tzinfo is UTC for slot in slots)


def test_the_next_slot_is_strictly_after_the_moment_given():
    cron = Cron("*/15 * * * *")

    assert cron.next_after(utc(2026, 1, 1, 10, 15)) == utc(2026, 1, 1, 10, 30)
    assert cron.next_after(utc(2026, 1, 1, 10, 14, 59, 999999)) == utc(2026, 1, 1, 10, 15)


def test_six_fields_put_seconds_first():
    cron = Cron("*/20 * * * * *")

    assert following(cron, utc(2026, 1, 1, 10, 0, 5), 4) == [
        utc(2026, 1, 1, 10, 0, 20),
        utc(2026, 1, 1, 10, 0, 40),
        utc(2026, 1, 1, 10, 1, 0),
        utc(2026, 1, 1, 10, 1, 20),
    ]


@pytest.mark.parametrize(
    ("tz", "expression", "after", "expected"),
    [
        # Europe/Berlin skips 02:00-03:00 on 2026-03-29. A fixed hour in the gap is shifted
        # to the first wall time after it, 03:00 CEST = 01:00 UTC...
        (
            "Europe/Berlin",
            "30 2 * * *",
            utc(2026, 3, 27, 12),
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        ),
        # ...and with a wildcard hour the slot in the gap is skipped: 01:15 CET, 03:15 CEST.
        (
            "Europe/Berlin",
            "15 * * * *",
            utc(2026, 3, 28, 23, 30),
            [utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 15), utc(2026, 3, 29, 2, 15)],
        ),
        # America/New_York skips 02:00-03:00 on 2026-03-08: 02:30 daily fires at 03:00 EDT.
        (
            "America/New_York",
            "30 2 * * *",
            utc(2026, 3, 7, 12),
            [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
        ),
    ],
)
def test_a_wall_time_that_does_not_exist_is_shifted_or_skipped(tz, expression, after, expected):
    assert following(Cron(expression, tz), after, len(expected)) == expected


def test_a_wall_time_that_repeats_fires_at_each_of_its_two_instants():
    # 2026-10-25 in Berlin: 02:00-03:00 happens twice, first CEST (UTC+2), then CET (UTC+1).
    cron = Cron("30 2 * * *", "Europe/Berlin")

    slots = following(cron, utc(2026, 10, 24, 12), 3)

    assert slots == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30)]
    assert [slot.astimezone(BERLIN).strftime("%H:%M%z") for slot in slots] == [
        "02:30+0200",
        "02:30+0100",
        "02:30+0100",
    ]


def test_an_hourly_schedule_fires_25_times_on_the_long_day_and_23_on_the_short_one():
    cron = Cron("0 * * * *", "Europe/Berlin")

    def day(*date: int) -> list[datetime]:
        start = local(BERLIN, *date, 0, 0) - timedelta(microseconds=1)
        end = local(BERLIN, *date, 23, 59)
        return list(cron.slots(start, end))

    long_day, short_day = day(2026, 10, 25), day(2026, 3, 29)

    assert len(long_day) == len(set(long_day)) == 25
    assert len(short_day) == 23
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(long_day))


def test_slots_between_two_moments_exclude_the_first_and_include_the_last():
    cron = Cron("*/10 * * * *")

    assert list(cron.slots(utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 30))) == [
        utc(2026, 1, 1, 10, 10),
        utc(2026, 1, 1, 10, 20),
        utc(2026, 1, 1, 10, 30),
    ]
    assert list(cron.slots(utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 9))) == []


@pytest.mark.parametrize(
    ("expression", "after", "until", "expected"),
    [
        ("*/10 * * * *", utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 35), utc(2026, 1, 1, 10, 30)),
        ("*/10 * * * *", utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 10, 30)),
        ("*/10 * * * *", utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 5), None),
        # A sparse expression far back: the window grows until it holds the slot.
        ("0 9 1 1 *", utc(2020, 1, 1), utc(2026, 6, 1), utc(2026, 1, 1, 9, 0)),
        ("0 9 1 1 *", utc(2026, 1, 1, 9, 0), utc(2026, 6, 1), None),
        # A dense one over a long interval: found without stepping through a year of seconds.
        ("* * * * * *", utc(2025, 1, 1), utc(2026, 1, 1, 12, 0, 0, 500), utc(2026, 1, 1, 12)),
        # An interval that ends before it starts holds nothing.
        ("* * * * * *", utc(2026, 1, 2), utc(2026, 1, 1), None),
    ],
)
def test_the_latest_slot_in_an_interval(expression, after, until, expected):
    assert Cron(expression).latest(after, until) == expected


def test_slots_are_a_lazy_sequence_even_over_years_of_seconds():
    cron = Cron("* * * * * *")

    first = list(islice(cron.slots(utc(2026, 1, 1), utc(2030, 1, 1)), 3))

    assert first == [utc(2026, 1, 1, 0, 0, s) for s in (1, 2, 3)]


@pytest.mark.parametrize("expression", ["@daily", "@hourly", "0 9 * * MON-FRI", "0 0 L * *"])
def test_aliases_and_names_are_accepted(expression):
    assert check_expression(expression) == expression


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 9 * *", "has 4 fields; a cron expression has 5"),
        ("0 0 9 * * * 2030", "has 7 fields"),
        ("61 * * * *", "is not a valid cron expression"),
        ("0 9 * * someday", "is not a valid cron expression"),
        ("0 0 30 2 *", "names no date that exists"),
        ("H 9 * * *", "hashed (H) fields are not supported"),
        ("@reboot", "unknown alias"),
    ],
)
def test_a_bad_expression_is_refused_with_the_reason(expression, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_expression(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/Berlim", "", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused(name):
    with pytest.raises(ValueError, match="is not an IANA time zone name"):
        zone(name)


def test_a_naive_moment_is_refused():
    with pytest.raises(ValueError, match="naive"):
        Cron("* * * * *").next_after(datetime(2026, 1, 1))
