"""Richer flows through a whole hub: ``when``, ``for_each`` and JSONata transforms, with a real
SMTP server receiving what the steps send."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from integrationhub.core import control
from integrationhub.core.schema import runs, utcnow

pytestmark = pytest.mark.integration

FAST_RETRY = {"initial_delay": 0.01, "max_delay": 0.01}


def send(step_id: str, **fields: object) -> dict[str, object]:
    return {
        "id": step_id,
        "action": "smtp-email",
        "credential": "smtp-credentials",
        "retry": FAST_RETRY,
        **fields,
    }


def email_input(to: object, subject: object = "hello") -> dict[str, object]:
    return {"to": to, "subject": subject, "body": "<p>hi</p>"}


async def run_flow(hub, flow_id: str, flow: dict, parameters: dict) -> dict:
    put = await hub.client.put(f"/api/v1/flows/{flow_id}", json=flow)
    assert put.status_code in (200, 201), put.text
    response = await hub.client.post(
        "/api/v1/trigger?wait=20", json={"flow_id": flow_id, "parameters": parameters}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def history(hub, run_id: str) -> list[tuple[str, str | None]]:
    entries = (await hub.client.get(f"/api/v1/runs/{run_id}/history")).json()
    return [(entry["event"], entry["step_id"]) for entry in entries]


WHEN_FLOW = {
    "steps": [
        send("notify", when="parameters.notify", input=email_input("{{ parameters.to }}")),
        {
            "id": "report",
            "action": "transform",
            "input": {
                "value": {
                    "$jsonata": "{'output': steps.notify.output, "
                    "'id': steps.notify.output.message_id}"
                }
            },
        },
    ]
}


async def test_when_false_skips_the_step_and_later_steps_see_its_output_as_null(hub, smtp):
    await hub.put_smtp_credential(smtp.port)

    run = await run_flow(hub, "maybe-notify", WHEN_FLOW, {"notify": False, "to": "a@example.com"})

    assert run["status"] == "succeeded", run
    notify, report = run["steps"]
    assert (notify["status"], notify["output"], notify["attempts"]) == ("skipped", None, 0)
    assert report["output"] == {"value": {"output": None}}
    assert smtp.messages == []
    assert ("step.skipped", "notify") in await history(hub, run["run_id"])


async def test_when_true_runs_the_step_and_later_steps_see_its_output(hub, smtp):
    await hub.put_smtp_credential(smtp.port)

    run = await run_flow(hub, "maybe-notify", WHEN_FLOW, {"notify": True, "to": "a@example.com"})

    assert run["status"] == "succeeded", run
    assert [s["status"] for s in run["steps"]] == ["succeeded", "succeeded"]
    message_id = smtp.messages[0].message["Message-ID"]
    assert run["steps"][1]["output"]["value"]["id"] == message_id


async def test_retry_of_a_run_does_not_run_a_skipped_step(hub, smtp):
    flow = {
        "steps": [
            send("first", when="parameters.first", input=email_input("a@example.com")),
            send("second", credential="second-smtp", input=email_input("b@example.com")),
        ]
    }
    failed = await run_flow(hub, "skip-then-fail", flow, {"first": False})
    assert failed["status"] == "failed"
    assert [s["status"] for s in failed["steps"]] == ["skipped", "failed"]

    await hub.put_smtp_credential(smtp.port, credential_id="smtp-credentials")
    await hub.put_smtp_credential(smtp.port, credential_id="second-smtp")
    assert (await hub.client.post(f"/api/v1/runs/{failed['run_id']}/retry")).status_code == 202
    run = await hub.wait_for_run(failed["run_id"])

    assert run["status"] == "succeeded"
    assert run["steps"][0] == failed["steps"][0]
    assert [m.recipients for m in smtp.messages] == [["b@example.com"]]
    events = await history(hub, run["run_id"])
    assert events.count(("step.skipped", "first")) == 1


RECIPIENTS = [f"person{n}@example.com" for n in range(5)]


async def test_for_each_sends_one_email_per_item_with_distinct_message_ids_two_at_a_time(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    smtp.delay = 0.5  # long enough that two sessions overlap, if the bound lets them
    flow = {
        "steps": [
            send(
                "send",
                for_each="parameters.recipients",
                concurrency=2,
                input=email_input("{{ item }}", "Hello {{ index + 1 }} of 5"),
            )
        ]
    }

    run = await run_flow(hub, "fan-out", flow, {"recipients": RECIPIENTS})

    assert run["status"] == "succeeded", run
    assert smtp.most_in_data == 2
    assert sorted(m.recipients[0] for m in smtp.messages) == RECIPIENTS
    message_ids = {m.recipients[0]: m.message["Message-ID"] for m in smtp.messages}
    assert len(set(message_ids.values())) == 5
    for index, to in enumerate(RECIPIENTS):
        call = control.call_id("send", index)
        assert message_ids[to].startswith(f"<{run['run_id']}.{call}@")
    items = run["steps"][0]["output"]["items"]
    assert [item["recipients"] for item in items] == [[to] for to in RECIPIENTS]
    assert [item["message_id"] for item in items] == [message_ids[to] for to in RECIPIENTS]
    assert run["steps"][0]["attempts"] == 1
    events = await history(hub, run["run_id"])
    assert events.count(("step.sending", "send")) == 1


async def test_a_failing_item_fails_the_step_and_no_further_item_starts(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    recipients = ["a@example.com", "b@example.com", "not an address", "d@example.com"]
    flow = {
        "steps": [send("send", for_each="parameters.recipients", input=email_input("{{ item }}"))]
    }

    run = await run_flow(hub, "fan-out-broken", flow, {"recipients": recipients})

    assert run["status"] == "failed"
    step = run["steps"][0]
    assert step["status"] == "failed"
    assert step["error"].startswith("item 2 of 4: invalid input for smtp-email: to.0: value is not")
    assert run["error"].startswith("step 'send' failed: item 2 of 4:")
    assert [m.recipients for m in smtp.messages] == [["a@example.com"], ["b@example.com"]]


async def test_an_items_transient_failure_is_retried_for_that_item_alone(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    smtp.refuse_next = ["451 4.3.0 Try again later"]
    flow = {
        "steps": [send("send", for_each="parameters.recipients", input=email_input("{{ item }}"))]
    }

    run = await run_flow(hub, "fan-out-retry", flow, {"recipients": RECIPIENTS[:3]})

    assert run["status"] == "succeeded", run
    assert [m.recipients[0] for m in smtp.messages] == RECIPIENTS[:3]
    events = await history(hub, run["run_id"])
    assert ("step.retrying", "send") not in events  # the step stayed sending meanwhile


async def test_a_jsonata_transform_feeds_a_later_step(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    flow = {
        "steps": [
            {
                "id": "shape",
                "action": "transform",
                "input": {
                    "value": {
                        "$jsonata": "{'to': parameters.people[active].email, "
                        "'subject': 'Open: ' & $join(parameters.tickets[state = 'open'].id, ', ')}"
                    }
                },
            },
            send(
                "send",
                for_each="steps.shape.output.value.to",
                input={
                    "to": "{{ item }}",
                    "subject": {"$jsonata": "steps.shape.output.value.subject"},
                    "body": {
                        "$jsonata": "'<p>' & $uppercase($substringBefore(item, '@')) & '</p>'"
                    },
                },
            ),
        ]
    }
    parameters = {
        "people": [
            {"email": "ada@example.com", "active": True},
            {"email": "bob@example.com", "active": False},
            {"email": "cy@example.com", "active": True},
        ],
        "tickets": [{"id": "T-1", "state": "open"}, {"id": "T-2", "state": "closed"}],
    }

    run = await run_flow(hub, "shaped", flow, parameters)

    assert run["status"] == "succeeded", run
    assert run["steps"][0]["output"] == {
        "value": {"to": ["ada@example.com", "cy@example.com"], "subject": "Open: T-1"}
    }
    assert [m.recipients[0] for m in smtp.messages] == ["ada@example.com", "cy@example.com"]
    assert {m.message["Subject"] for m in smtp.messages} == {"Open: T-1"}
    assert "ADA" in smtp.messages[0].message.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (
            {"when": "($f := function($n){ 1 + $f($n + 1) }; $f(0))"},
            "when: JSONata expression '($f := function($n){ 1 + $f($n + 1) }; $f(0))' stopped: "
            "nested deeper than",
        ),
        (
            {"input": {"value": {"$jsonata": "$pad('', 5000000)"}}},
            "input.value: JSONata expression \"$pad('', 5000000)\" stopped:",
        ),
        ({"for_each": "[1..5000]", "input": {"value": 1}}, "for_each: 5,000 items; a step"),
        (
            {"input": {"value": {"$jsonata": "$error('no ' & parameters.what)"}}},
            "input.value: JSONata expression \"$error('no ' & parameters.what)\" failed: no way",
        ),
    ],
)
async def test_hostile_or_failing_expressions_fail_their_step_and_the_hub_goes_on(
    hub, smtp, step, error
):
    flow = {"steps": [{"id": "shape", "action": "transform", "input": {"value": 1}, **step}]}

    run = await run_flow(hub, "hostile", flow, {"what": "way"})

    assert run["status"] == "failed"
    assert run["steps"][0]["error"].startswith(error), run["steps"][0]["error"]
    assert run["error"].startswith("step 'shape' failed: ")
    await hub.put_smtp_credential(smtp.port)
    after = (
        await hub.client.post(
            "/api/v1/trigger?wait=10",
            json={
                "flow_id": "send-summary-email",
                "parameters": {"to": "a@example.com", "subject": "still here", "body": "x"},
            },
        )
    ).json()
    assert after["status"] == "succeeded"


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ({"when": "parameters.("}, "steps.0.when: Value error, step 'send': JSONata expression"),
        ({"for_each": "[1, 2"}, "steps.0.for_each: Value error, step 'send': JSONata"),
        ({"concurrency": 2}, "steps.0.concurrency: Value error, step 'send': concurrency"),
        (
            {"input": {"to": {"$jsonata": "parameters.to", "extra": 1}}},
            "steps.0.input: Value error, step 'send': input.to: $jsonata must be the only key",
        ),
        ({"for_each": "parameters.x", "concurrency": 1000}, "steps.0.concurrency: Input should"),
    ],
)
async def test_a_broken_flow_is_refused_naming_the_step_and_field(hub, step, reason):
    flow = {"steps": [send("send", input=email_input("a@example.com")) | step]}

    response = await hub.client.put("/api/v1/flows/broken", json=flow)

    assert response.status_code == 422
    assert reason in response.json()["error"]["message"]


async def test_a_for_each_step_left_sending_by_a_dead_worker_fails_as_outcome_unknown(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    flow = {"steps": [send("send", for_each="parameters.to", input=email_input("{{ item }}"))]}
    await hub.client.put("/api/v1/flows/fan-out-dead", json=flow)
    store = hub.hub.store
    run, _ = await store.create_run(
        flow=await hub.hub.catalog.get("fan-out-dead"),
        parameters={"to": RECIPIENTS},
        idempotency_key=None,
    )
    assert await store.claim(run.run_id, owner="dead-worker", lease=0.2)
    await store.start_step(run.run_id, "send", attempt=1, owner="dead-worker", lease=0.2)

    finished = await hub.wait_for_run(run.run_id)

    assert finished["status"] == "failed"
    assert "outcome unknown" in finished["error"]
    assert "any of its items may have been done" in finished["error"]
    assert smtp.messages == []


async def test_a_worker_that_lost_the_run_starts_no_further_item(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    smtp.delay = 1.0
    flow = {"steps": [send("send", for_each="parameters.to", input=email_input("{{ item }}"))]}
    await hub.client.put("/api/v1/flows/fan-out-lost", json=flow)
    run_id = (
        await hub.client.post(
            "/api/v1/trigger", json={"flow_id": "fan-out-lost", "parameters": {"to": RECIPIENTS}}
        )
    ).json()["run_id"]
    async with asyncio.timeout(10):
        while smtp.in_data == 0:
            await asyncio.sleep(0.01)

    # What another worker does once this one's lease has run out: take the run over.
    async with hub.hub.store.engine.begin() as conn:
        await conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(lease_owner="other-worker", lease_expires_at=utcnow() + timedelta(hours=1))
        )
    async with asyncio.timeout(10):
        while REGISTRY.get_sample_value("integrationhub_runs_in_progress") != 0:
            await asyncio.sleep(0.01)

    assert [m.recipients for m in smtp.messages] == [[RECIPIENTS[0]]]
    run = (await hub.client.get(f"/api/v1/runs/{run_id}")).json()
    assert (run["status"], run["steps"][0]["status"]) == ("running", "sending")
