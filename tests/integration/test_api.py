"""The HTTP contract: auth, bad input, flows, credentials, connectors, health, metrics."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from tests.support.hub import API_KEY, SEED, hub_settings, running_hub

pytestmark = pytest.mark.integration


def error_of(response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.fixture
def hub_log(hub) -> Iterator[io.StringIO]:
    """What the hub logs from now on, rendered as it renders its stdout (JSON lines). capfd
    cannot see that: the hub's handler writes to the sys.stdout it found when it started."""
    root = logging.getLogger()
    (rendering,) = [
        handler
        for handler in root.handlers
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter)
    ]
    capture = logging.StreamHandler(io.StringIO())
    capture.setFormatter(rendering.formatter)
    root.addHandler(capture)
    yield capture.stream
    root.removeHandler(capture)


# Authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"Authorization": f"Bearer {API_KEY}x"},
        {"Authorization": "Bearer "},
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/trigger"),
        ("GET", "/api/v1/runs"),
        ("GET", "/api/v1/credentials"),
        ("GET", "/api/v1/flows"),
        ("GET", "/api/v1/connectors"),
    ],
)
async def test_missing_or_wrong_api_key_is_401(hub, method, path, headers):
    hub.client.headers.pop("Authorization")
    response = await hub.client.request(method, path, json=SEED, headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


async def test_health_and_metrics_need_no_key(hub):
    hub.client.headers.pop("Authorization")
    health = await hub.client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "components": {
            "database": {"status": "up"},
            "credentials": {"status": "up"},
            "broker": {"status": "up"},
        },
    }
    metrics = await hub.client.get("/metrics")
    assert metrics.status_code == 200
    assert "integrationhub_http_request_duration_seconds" in metrics.text


# Bad input on triggers ----------------------------------------------------------------------


async def test_unknown_flow_is_404(hub):
    response = await hub.client.post("/api/v1/trigger", json={"flow_id": "nope", "parameters": {}})
    assert response.status_code == 404
    assert error_of(response) == {"code": "flow_not_found", "message": "flow 'nope' does not exist"}


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({**SEED["parameters"], "to": "not-an-address"}, "parameters.to"),
        ({**SEED["parameters"], "subject": "Hi\r\nBcc: victim@example.com"}, "parameters.subject"),
        ({**SEED["parameters"], "to": "a@example.com\nBcc: b@example.com"}, "parameters.to"),
        ({"to": "a@example.com", "subject": "s"}, "parameters"),
    ],
)
async def test_parameters_failing_the_schema_are_422_naming_the_field(hub, smtp, parameters, field):
    await hub.put_smtp_credential(smtp.port)
    response = await hub.client.post(
        "/api/v1/trigger", json={"flow_id": "send-summary-email", "parameters": parameters}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "parameters_invalid"
    assert error["message"].startswith(field)
    runs = (await hub.client.get("/api/v1/runs")).json()
    assert runs == []
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"flow_id": "send-summary-email", "parameters": ', "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 422),
        (b'{"flow_id": "send-summary-email", "parameters": []}', "application/json", 422),
        (b'{"flow_id": "../../etc/passwd", "parameters": {}}', "application/json", 422),
        (b'{"flow_id": "x", "parameters": {}, "extra": 1}', "application/json", 422),
    ],
)
async def test_malformed_bodies_get_a_clear_error(hub, body, content_type, status):
    response = await hub.client.post(
        "/api/v1/trigger", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert error_of(response)["message"]


async def test_body_over_the_limit_is_413(hub):
    huge = {
        "flow_id": "send-summary-email",
        "parameters": {**SEED["parameters"], "body": "x" * (1024 * 1024 + 1)},
    }
    response = await hub.client.post("/api/v1/trigger", json=huge)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


async def test_body_limit_is_configurable(tmp_path, openbao, pulsar_url):
    addr, token = openbao
    settings = hub_settings(
        tmp_path, vault_addr=addr, vault_token=token, pulsar_url=pulsar_url, max_body_bytes=2048
    )
    async with running_hub(settings) as small:
        over = {**SEED, "parameters": {**SEED["parameters"], "body": "x" * 2048}}
        response = await small.client.post("/api/v1/trigger", json=over)
        assert response.status_code == 413
        assert "larger than 2048 bytes" in error_of(response)["message"]
        assert (await small.client.post("/api/v1/trigger", json=SEED)).status_code == 202


async def test_streamed_body_over_the_limit_without_length_is_413(hub):
    async def chunks():
        for _ in range(40):
            yield b"x" * 32768

    response = await hub.client.post(
        "/api/v1/trigger", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("wait", ["-1", "301", "abc"])
async def test_out_of_range_wait_is_422(hub, wait):
    response = await hub.client.post(f"/api/v1/trigger?wait={wait}", json=SEED)
    assert response.status_code == 422


async def test_oversized_idempotency_key_is_422(hub):
    response = await hub.client.post(
        "/api/v1/trigger", json=SEED, headers={"Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 422


# Runs --------------------------------------------------------------------------------------


async def test_unknown_run_is_404(hub):
    response = await hub.client.get("/api/v1/runs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert error_of(response)["code"] == "run_not_found"


async def test_run_list_is_newest_first_and_filters(hub):
    ids = [(await hub.client.post("/api/v1/trigger", json=SEED)).json()["run_id"] for _ in range(3)]
    for run_id in ids:
        await hub.wait_for_run(run_id)  # no credential: they fail

    listed = (await hub.client.get("/api/v1/runs?limit=2")).json()
    assert [r["run_id"] for r in listed] == ids[::-1][:2]
    failed = (await hub.client.get("/api/v1/runs?status=failed&flow_id=send-summary-email")).json()
    assert len(failed) == 3
    assert (await hub.client.get("/api/v1/runs?status=succeeded")).json() == []
    assert (await hub.client.get("/api/v1/runs?status=bogus")).status_code == 422
    assert (await hub.client.get("/api/v1/runs?limit=0")).status_code == 422


# Flows -------------------------------------------------------------------------------------

HOSTILE_FLOW = """
id: hostile
parameters: {type: object}
steps:
  - id: send
    action: smtp-email
    credential: smtp-credentials
    input:
      to: "recipient@example.com"
      subject: "{{ ''.__class__.__mro__ }}"
      body: "x"
"""


async def test_flow_round_trip_in_yaml_and_json(hub):
    created = await hub.client.put(
        "/api/v1/flows/hostile", content=HOSTILE_FLOW, headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "api"
    as_json = created.json() | {"description": "changed"}
    as_json.pop("source")
    updated = await hub.client.put("/api/v1/flows/hostile", json=as_json)
    assert updated.status_code == 200
    assert (await hub.client.get("/api/v1/flows/hostile")).json()["description"] == "changed"
    ids = [f["id"] for f in (await hub.client.get("/api/v1/flows")).json()]
    assert ids == sorted(ids) and {"hostile", "send-summary-email"} <= set(ids)
    assert (await hub.client.delete("/api/v1/flows/hostile")).status_code == 204
    assert (await hub.client.get("/api/v1/flows/hostile")).status_code == 404


async def test_template_reaching_python_internals_fails_the_step_clearly(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    await hub.client.put(
        "/api/v1/flows/hostile", content=HOSTILE_FLOW, headers={"Content-Type": "application/yaml"}
    )

    run = (
        await hub.client.post(
            "/api/v1/trigger?wait=10", json={"flow_id": "hostile", "parameters": {}}
        )
    ).json()

    assert run["status"] == "failed"
    assert "refused by the sandbox" in run["steps"][0]["error"]
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("id: x\nsteps: [", "application/yaml", 400, "malformed_yaml"),
        ("{", "application/json", 400, "malformed_json"),
        ("- a list", "application/yaml", 422, "flow_invalid"),
        (
            '{"id": "other", "steps": [{"id": "a", "action": "smtp-email"}]}',
            "application/json",
            422,
            "flow_invalid",
        ),
        (
            '{"steps": [{"id": "a", "action": "no-such-action"}]}',
            "application/json",
            422,
            "flow_invalid",
        ),
        ('{"steps": []}', "application/json", 422, "flow_invalid"),
        (
            '{"steps": [{"id": "a", "action": "smtp-email", "input": {"x": "{{ oops"}}]}',
            "application/json",
            422,
            "flow_invalid",
        ),
        ("!!python/object/apply:os.system ['true']", "application/yaml", 400, "malformed_yaml"),
    ],
)
async def test_invalid_flow_definitions_are_refused(hub, body, content_type, status, code):
    response = await hub.client.put(
        "/api/v1/flows/x", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code


async def test_builtin_flow_cannot_be_deleted_but_can_be_overridden(hub):
    response = await hub.client.delete("/api/v1/flows/send-summary-email")
    assert response.status_code == 409
    builtin = (await hub.client.get("/api/v1/flows/send-summary-email")).json()
    assert builtin["source"] == "builtin"
    builtin.pop("source")
    assert (
        await hub.client.put(
            "/api/v1/flows/send-summary-email", json=builtin | {"description": "ours"}
        )
    ).status_code == 201
    assert (await hub.client.get("/api/v1/flows/send-summary-email")).json()["source"] == "api"
    assert (await hub.client.delete("/api/v1/flows/send-summary-email")).status_code == 204
    assert (await hub.client.get("/api/v1/flows/send-summary-email")).json()["source"] == "builtin"


# Credentials -------------------------------------------------------------------------------

SECRET = "pa55-w0rd-never-shown"


async def test_credentials_api_returns_metadata_and_never_the_secret(hub, hub_log):
    put = await hub.client.put(
        "/api/v1/credentials/mail",
        json={
            "type": "smtp",
            "data": {
                "host": "smtp.example.org",
                "port": 587,
                "username": "hub",
                "password": SECRET,
                "from_address": "hub@example.org",
            },
        },
    )
    assert put.status_code == 201
    meta = put.json()
    assert meta["id"] == "mail" and meta["type"] == "smtp" and meta["version"] == 1
    assert set(meta["fields"]) >= {"host", "port", "username", "password", "from_address"}

    again = await hub.client.put(
        "/api/v1/credentials/mail",
        json={
            "type": "smtp",
            "data": {
                "host": "smtp.example.org",
                "port": 465,
                "password": SECRET,
                "from_address": "hub@example.org",
            },
        },
    )
    assert again.status_code == 200 and again.json()["version"] == 2

    responses = [
        put,
        again,
        await hub.client.get("/api/v1/credentials"),
        await hub.client.get("/api/v1/credentials/mail"),
    ]
    for response in responses:
        assert SECRET not in response.text
    assert "mail" in [c["id"] for c in responses[2].json()]
    logged = hub_log.getvalue()
    assert '"event": "credential.written"' in logged
    assert SECRET not in logged

    assert (await hub.client.delete("/api/v1/credentials/mail")).status_code == 204
    assert (await hub.client.get("/api/v1/credentials/mail")).status_code == 404
    assert (await hub.client.delete("/api/v1/credentials/mail")).status_code == 404


@pytest.mark.parametrize(
    ("credential_id", "body", "status"),
    [
        ("ok", {"type": "unknown-type", "data": {}}, 422),
        (
            "ok",
            {
                "type": "smtp",
                "data": {
                    "host": "h",
                    "port": "not-a-port",
                    "password": SECRET,
                    "from_address": "a@example.org",
                },
            },
            422,
        ),
        (
            "ok",
            {
                "type": "smtp",
                "data": {
                    "host": "h",
                    "port": 25,
                    "from_address": "a@example.org",
                    "password": SECRET,
                    "surprise": SECRET,
                },
            },
            422,
        ),
        ("..", {"type": "smtp", "data": {}}, 422),
        ("a%2Fb", {"type": "smtp", "data": {}}, 422),
        ("ok", {"type": "smtp"}, 422),
    ],
)
async def test_invalid_credentials_are_refused_without_echoing_values(
    hub, credential_id, body, status
):
    response = await hub.client.put(f"/api/v1/credentials/{credential_id}", json=body)
    assert response.status_code in {status, 404}
    assert SECRET not in response.text


async def test_credential_of_the_wrong_type_fails_the_run_clearly(hub):
    await hub.client.put(
        "/api/v1/credentials/smtp-credentials",
        json={
            "type": "zulip",
            "data": {
                "site": "https://chat.example.org",
                "email": "bot@example.org",
                "api_key": "k",
            },
        },
    )
    run = (await hub.client.post("/api/v1/trigger?wait=10", json=SEED)).json()
    assert run["status"] == "failed"
    assert "is of type 'zulip'" in run["error"]


# Connectors --------------------------------------------------------------------------------


async def test_connectors_list_their_actions_with_json_schemas(hub):
    connectors = {c["name"]: c for c in (await hub.client.get("/api/v1/connectors")).json()}
    smtp = {a["name"]: a for a in connectors["smtp"]["actions"]}["smtp-email"]
    zulip = {a["name"]: a for a in connectors["zulip"]["actions"]}["zulip-message"]
    assert smtp["input_schema"]["type"] == "object"
    assert "subject" in smtp["input_schema"]["properties"]
    assert zulip["credential_type"] == "zulip"
    fields = {f["name"]: f for f in connectors["smtp"]["credential_fields"]}
    assert fields["password"]["secret"] is True and fields["host"]["secret"] is False


async def test_metrics_count_runs_by_flow_and_status(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    await hub.client.post("/api/v1/trigger?wait=10", json=SEED)
    text = (await hub.client.get("/metrics")).text
    assert 'integrationhub_runs_total{flow_id="send-summary-email",status="succeeded"}' in text
    assert (
        'integrationhub_http_request_duration_seconds_count{method="POST",'
        'route="/api/v1/trigger",status="200"}'
    ) in text
    assert "integrationhub_step_duration_seconds_bucket" in text
    assert "integrationhub_credential_cache_total" in text


async def test_logs_are_json_lines_with_run_flow_and_step_bound_and_secrets_redacted(
    hub, smtp, hub_log
):
    await hub.put_smtp_credential(smtp.port)
    run = (await hub.client.post("/api/v1/trigger?wait=10", json=SEED)).json()
    assert run["status"] == "succeeded", run
    # A careless call site: the processor, not the caller, keeps the secret out.
    structlog.get_logger().info("probe", password=SECRET, data={"nested": {"api_key": SECRET}})

    out = hub_log.getvalue()
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    (step,) = [e for e in events if e["event"] == "step.succeeded"]
    assert (step["run_id"], step["flow_id"], step["step"]) == (
        run["run_id"],
        "send-summary-email",
        "send",
    )
    (probe,) = [e for e in events if e["event"] == "probe"]
    assert probe["password"] == "[REDACTED]"
    assert probe["data"] == {"nested": {"api_key": "[REDACTED]"}}
    assert SECRET not in out
