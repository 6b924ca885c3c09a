"""Inbound webhooks: GitHub's and Slack's signatures, replays, and bad requests."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

pytestmark = pytest.mark.integration

SECRET = "webhook-shared-secret-0123"


def github_headers(body: bytes, *, delivery: str = "d-1", secret: str = SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={signature}",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


def slack_headers(
    body: bytes, *, timestamp: int | None = None, content_type: str = "application/json"
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Signature": f"v0={signature}",
        "X-Slack-Request-Timestamp": str(timestamp),
        "Content-Type": content_type,
    }


def mail_flow(webhook: dict, *, subject: str) -> dict:
    return {
        "trigger": {"webhook": {**webhook, "parameters": {"subject": subject}}},
        "parameters": {
            "type": "object",
            "required": ["subject"],
            "properties": {"subject": {"type": "string", "minLength": 1}},
        },
        "steps": [
            {
                "id": "mail",
                "action": "smtp-email",
                "credential": "smtp-credentials",
                "input": {
                    "to": "team@example.com",
                    "subject": "{{ parameters.subject }}",
                    "body": "<p>webhook</p>",
                },
            }
        ],
    }


@pytest.fixture
async def signed(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    response = await hub.client.put(
        "/api/v1/credentials/hook-secret",
        json={"type": "webhook-secret", "data": {"secret": SECRET}},
    )
    assert response.status_code == 201
    github = mail_flow(
        {"signature": "github", "secret": "hook-secret"}, subject="Issue: {{ body.issue.title }}"
    )
    slack = mail_flow(
        {"signature": "slack", "secret": "hook-secret"}, subject="Slack: {{ body.text }}"
    )
    assert (await hub.client.put("/api/v1/flows/gh", json=github)).status_code == 201
    assert (await hub.client.put("/api/v1/flows/sl", json=slack)).status_code == 201
    hub.client.headers.pop("Authorization")  # senders have no API key
    return hub


async def test_github_signed_delivery_runs_the_flow_and_a_replay_returns_the_same_run(signed, smtp):
    body = json.dumps({"action": "opened", "issue": {"title": "Disk full"}}).encode()

    first = await signed.client.post(
        "/api/v1/webhooks/gh", content=body, headers=github_headers(body)
    )
    replay = await signed.client.post(
        "/api/v1/webhooks/gh", content=body, headers=github_headers(body)
    )

    assert first.status_code == 202, first.text
    assert replay.status_code == 202
    assert replay.json()["run_id"] == first.json()["run_id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    signed.client.headers["Authorization"] = "Bearer test-api-key"
    run = await signed.wait_for_run(first.json()["run_id"])
    assert run["status"] == "succeeded", run
    assert [m.message["Subject"] for m in smtp.messages] == ["Issue: Disk full"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body + b" ", headers),
        lambda body, headers: (body, {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}),
        lambda body, headers: (
            body,
            {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"},
        ),
        lambda body, headers: (body, github_headers(body, secret="not-the-secret")),
    ],
    ids=["body-changed", "wrong-signature", "no-signature", "other-secret"],
)
async def test_github_delivery_with_a_bad_signature_is_401_and_runs_nothing(signed, tamper):
    body = json.dumps({"issue": {"title": "x"}}).encode()
    body, headers = tamper(body, github_headers(body))

    response = await signed.client.post("/api/v1/webhooks/gh", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_invalid"
    signed.client.headers["Authorization"] = "Bearer test-api-key"
    assert (await signed.client.get("/api/v1/runs")).json() == []


async def test_slack_signed_request_runs_once_and_stale_or_replayed_ones_do_not(signed, smtp):
    body = json.dumps({"text": "deploy done"}).encode()
    headers = slack_headers(body)

    first = await signed.client.post("/api/v1/webhooks/sl", content=body, headers=headers)
    replay = await signed.client.post("/api/v1/webhooks/sl", content=body, headers=headers)
    stale = await signed.client.post(
        "/api/v1/webhooks/sl",
        content=body,
        headers=slack_headers(body, timestamp=int(time.time()) - 600),
    )

    assert first.status_code == 202, first.text
    assert replay.json()["run_id"] == first.json()["run_id"]
    assert stale.status_code == 401
    assert "Timestamp" in stale.json()["error"]["message"]


async def test_slack_form_body_becomes_the_parameters(signed, smtp):
    body = b"command=%2Fdeploy&text=api+v2"
    headers = slack_headers(body, content_type="application/x-www-form-urlencoded")

    response = await signed.client.post("/api/v1/webhooks/sl", content=body, headers=headers)

    assert response.status_code == 202, response.text
    signed.client.headers["Authorization"] = "Bearer test-api-key"
    run = await signed.wait_for_run(response.json()["run_id"])
    assert run["parameters"] == {"subject": "Slack: api v2"}


async def test_unsigned_webhook_needs_the_api_key(hub):
    flow = {
        "trigger": {"webhook": {}},
        "steps": [
            {
                "id": "noop",
                "action": "pulsar-publish",
                "input": {"topic": "webhook-echo", "payload": "{{ parameters }}"},
            }
        ],
    }
    await hub.client.put("/api/v1/flows/open-hook", json=flow)

    with_key = await hub.client.post("/api/v1/webhooks/open-hook", json={"a": 1})
    hub.client.headers.pop("Authorization")
    without = await hub.client.post("/api/v1/webhooks/open-hook", json={"a": 1})

    assert with_key.status_code == 202
    assert without.status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/webhooks/send-summary-email", b"{}", 404),
        ("/api/v1/webhooks/no-such-flow", b"{}", 404),
        ("/api/v1/webhooks/BAD%20ID", b"{}", 422),
    ],
)
async def test_flows_without_a_webhook_trigger_are_not_reachable(hub, path, body, status):
    response = await hub.client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status


async def test_signed_body_that_is_not_json_is_400(signed):
    body = b"\xff not json"
    response = await signed.client.post(
        "/api/v1/webhooks/gh", content=body, headers=github_headers(body)
    )
    assert response.status_code == 400


async def test_webhook_secret_must_be_long_enough(hub):
    response = await hub.client.put(
        "/api/v1/credentials/weak", json={"type": "webhook-secret", "data": {"secret": "short"}}
    )
    assert response.status_code == 422
    assert "short" not in response.text
