"""Schedule triggers without a hub: what a flow may declare, how `integrationhub check` reports
a broken one, and which missed slots a starting replica fires; "now" is always given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from integrationhub.cli.check import check_flow, load_document
from integrationhub.connectors.registry import Registry
from integrationhub.core.catalog import parse_flow
from integrationhub.core.cron import Cron
from integrationhub.core.schedules import COUNT_LIMIT, Skipped, catch_up, slot_key
from integrationhub.errors import FlowInvalid
from integrationhub.models.flow import ScheduleTrigger

FLOW = """\
id: weekday-report
parameters:
  type: object
  properties:
    to: {type: string, format: email}
    day: {type: string, pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
  required: [to]
steps:
  - id: send
    action: smtp-email
    credential: c
    input:
      to: "{{ parameters.to }}"
      subject: "Report {{ parameters.day }}"
      body: x
trigger:
  schedule:
    cron: "0 9 * * 1-5"
    timezone: Europe/Berlin
    parameters:
      to: reports@example.com
      day: "{{ slot[:10] }}"
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_entry_points()


def problems(text: str, registry: Registry) -> list[str]:
    return [str(p) for p in check_flow(load_document("flow.yaml", text), registry)]


# What a flow may declare ----------------------------------------------------------------------


def test_a_good_schedule_loads_and_has_no_problems(registry):
    flow = parse_flow(yaml.safe_load(FLOW), origin="test")

    assert flow.trigger is not None and flow.trigger.schedule is not None
    assert flow.trigger.schedule.timezone == "Europe/Berlin"
    assert problems(FLOW, registry) == []


def test_the_time_zone_defaults_to_utc_and_the_parameters_to_none():
    trigger = ScheduleTrigger(cron="*/5 * * * * *")

    assert trigger.timezone == "UTC"
    assert trigger.parameters_for(utc(2026, 1, 1)) == {}


def test_slot_in_templates_is_the_scheduled_moment_on_the_schedules_own_clock():
    trigger = ScheduleTrigger(
        cron="30 1 * * *",
        timezone="Asia/Kolkata",
        parameters={"at": "{{ slot }}", "day": "Report {{ slot[:10] }}", "fixed": [1, {"a": True}]},
    )

    # 20:00 UTC on 1 March is 01:30 on 2 March in India (UTC+05:30).
    assert trigger.parameters_for(utc(2026, 3, 1, 20, 0)) == {
        "at": "2026-03-02T01:30:00+05:30",
        "day": "Report 2026-03-02",
        "fixed": [1, {"a": True}],
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('cron: "0 9 * * 1-5"', 'cron: "0 9 * *"'),
            "flow.yaml:18: trigger.schedule.cron: Value error, '0 9 * *' has 4 fields",
        ),
        (
            ('cron: "0 9 * * 1-5"', 'cron: "0 25 * * *"'),
            "flow.yaml:18: trigger.schedule.cron: Value error, '0 25 * * *' is not a valid cron",
        ),
        (
            ("timezone: Europe/Berlin", "timezone: Europe/Berlim"),
            "flow.yaml:19: trigger.schedule.timezone: Value error, 'Europe/Berlim' is not an IANA",
        ),
        (
            ("to: reports@example.com", "to: reports at example.com"),
            "flow.yaml:21: trigger.schedule.parameters.to: breaks the flow's parameter schema: "
            "'reports at example.com' is not a 'email'",
        ),
        (
            ("to: reports@example.com", "cc: reports@example.com"),
            "flow.yaml:20: trigger.schedule.parameters: breaks the flow's parameter schema: "
            "'to' is a required property",
        ),
        (
            ('day: "{{ slot[:10] }}"', 'day: "{{ slot }}"'),
            "flow.yaml:22: trigger.schedule.parameters.day: breaks the flow's parameter schema: "
            "'2000-01-03T09:00:00+01:00' does not match",
        ),
        (
            ('day: "{{ slot[:10] }}"', 'day: "{{ slot[:10] "'),
            "flow.yaml:22: trigger.schedule.parameters.day: template '{{ slot[:10] ' is invalid",
        ),
        (
            ('day: "{{ slot[:10] }}"', 'day: "{{ parameters.day }}"'),
            "flow.yaml:20: trigger.schedule.parameters: template '{{ parameters.day }}' failed: "
            "'parameters' is undefined (a schedule's templates know only `slot`)",
        ),
        (
            ("    timezone: Europe/Berlin", "    timezone: Europe/Berlin\n    every: day"),
            "flow.yaml:20: trigger.schedule.every: Extra inputs are not permitted",
        ),
    ],
)
def test_each_problem_of_a_schedule_is_reported_at_its_line(registry, change, expected):
    found = problems(FLOW.replace(*change), registry)

    assert len(found) == 1, found
    assert found[0].startswith(expected), found


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ({"cron": "61 * * * *"}, "trigger.schedule.cron: Value error, '61 * * * *' is not a valid"),
        ({"cron": "* * * * *", "timezone": "CEST"}, "trigger.schedule.timezone: Value error"),
        ({"cron": "* * * * *"}, "trigger.schedule.parameters: breaks the flow's parameter schema"),
        (
            {"cron": "* * * * *", "parameters": {"to": 5}},
            "trigger.schedule.parameters.to: breaks the flow's parameter schema: 5 is not of type",
        ),
    ],
)
def test_a_flow_whose_schedule_cannot_work_is_refused_with_the_reason(schedule, reason):
    data = {
        "id": "demo",
        "parameters": {
            "type": "object",
            "properties": {"to": {"type": "string"}},
            "required": ["to"],
        },
        "steps": [{"id": "send", "action": "smtp-email"}],
        "trigger": {"schedule": schedule},
    }

    with pytest.raises(FlowInvalid) as raised:
        parse_flow(data, origin="flow 'demo'")

    assert raised.value.message.startswith(f"flow 'demo': {reason}"), raised.value.message


def test_a_slots_key_names_the_flow_and_the_utc_instant():
    berlin_nine = datetime.fromisoformat("2026-03-02T09:00:00+01:00")

    assert slot_key("report", berlin_nine) == "schedule:report:2026-03-02T08:00:00Z"


# Slots missed while no replica ran ------------------------------------------------------------

EVERY_MINUTE = Cron("* * * * *")


def test_a_schedule_handled_up_to_now_has_nothing_to_catch_up():
    now = utc(2026, 1, 1, 10, 0, 30)

    assert catch_up(EVERY_MINUTE, handled_until=now, now=now, window=300) == (None, Skipped())


def test_of_the_slots_missed_only_the_latest_within_the_window_fires():
    fire, skipped = catch_up(
        EVERY_MINUTE,
        handled_until=utc(2026, 1, 1, 10, 0),
        now=utc(2026, 1, 1, 10, 4, 30),
        window=300,
    )

    assert fire == utc(2026, 1, 1, 10, 4)
    assert skipped == Skipped(3, utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10, 3))


def test_a_slot_exactly_at_the_window_edge_still_fires():
    fire, skipped = catch_up(
        EVERY_MINUTE,
        handled_until=utc(2026, 1, 1, 9, 59),
        now=utc(2026, 1, 1, 10, 0, 30),
        window=30,
    )

    assert fire == utc(2026, 1, 1, 10, 0)
    assert skipped == Skipped()


def test_a_missed_slot_older_than_the_window_is_skipped_not_fired():
    daily = Cron("0 9 * * *", "Europe/Berlin")

    fire, skipped = catch_up(
        daily,
        handled_until=utc(2026, 1, 1, 8, 0),  # the 1st's slot, 09:00 CET
        now=utc(2026, 1, 2, 8, 10),  # ten minutes after the 2nd's
        window=300,
    )

    assert fire is None
    assert skipped == Skipped(1, utc(2026, 1, 2, 8, 0), utc(2026, 1, 2, 8, 0))


def test_a_long_outage_of_a_dense_schedule_is_counted_up_to_a_limit():
    now = utc(2026, 1, 8, 12, 0, 0, 250000)

    fire, skipped = catch_up(
        Cron("* * * * * *"), handled_until=now - timedelta(days=7), now=now, window=300
    )

    assert fire == utc(2026, 1, 8, 12, 0, 0)
    assert skipped.count == COUNT_LIMIT
    assert skipped.first == now - timedelta(days=7) + timedelta(microseconds=750000)
    assert skipped.last == utc(2026, 1, 8, 11, 59, 59)


def test_a_cursor_ahead_of_this_replicas_clock_catches_up_nothing():
    now = utc(2026, 1, 1, 10, 0)

    assert catch_up(
        EVERY_MINUTE, handled_until=now + timedelta(seconds=2), now=now, window=300
    ) == (None, Skipped())
