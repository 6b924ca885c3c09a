"""Flows that file GitHub and Jira issues through a whole hub (real OpenBao and pulsar-lite),
against the doubles that check every request (tests/doubles/github.py, tests/doubles/jira.py).
The remote side answers 429 once: the step waits what it was told and the run still
succeeds, with one issue, not two."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.doubles.github import GitHubDouble
from tests.doubles.jira import JiraDouble
from tests.support.hub import RunningHub, hub_settings, running_hub

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def github_server() -> Iterator[GitHubDouble]:
    with GitHubDouble() as double:
        yield double


@pytest.fixture
def github(github_server: GitHubDouble) -> Iterator[GitHubDouble]:
    github_server.reset()
    yield github_server
    violations = github_server.take_violations()
    assert not violations, "GitHub request violations:\n" + "\n".join(violations)


@pytest.fixture(scope="module")
def jira_server() -> Iterator[JiraDouble]:
    with JiraDouble() as double:
        yield double


@pytest.fixture
def jira(jira_server: JiraDouble) -> Iterator[JiraDouble]:
    jira_server.reset()
    yield jira_server
    violations = jira_server.take_violations()
    assert not violations, "Jira spec violations:\n" + "\n".join(violations)


@pytest.fixture
async def hub(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str
) -> AsyncIterator[RunningHub]:
    addr, token = openbao
    settings = hub_settings(tmp_path, vault_addr=addr, vault_token=token, pulsar_url=pulsar_url)
    async with running_hub(settings) as running:
        yield running


async def put(hub: RunningHub, path: str, body: dict[str, Any]) -> None:
    response = await hub.client.put(path, json=body)
    assert response.status_code in (200, 201), response.text


async def slowdowns(hub: RunningHub, connector: str) -> float:
    text = (await hub.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "integrationhub_ratelimit_remote_slowdowns_total"
                and sample.labels.get("connector") == connector
            ):
                return float(sample.value)
    return 0.0


async def run_flow(hub: RunningHub, flow_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    response = await hub.client.post(
        f"/api/v1/flows/{flow_id}/trigger?wait=20", json={"parameters": parameters}
    )
    assert response.status_code in (200, 202), response.text
    run: dict[str, Any] = response.json()
    return run if run["status"] != "queued" else await hub.wait_for_run(run["run_id"])


async def test_github_issue_step_waits_out_a_429_and_the_run_succeeds(
    hub: RunningHub, github: GitHubDouble
) -> None:
    data = {"token": github.token, "api_url": github.url}
    await put(hub, "/api/v1/credentials/github-bot", {"type": "github-token", "data": data})
    steps = [
        {
            "id": "issue",
            "action": "github-issue",
            "credential": "github-bot",
            "input": {"owner": "octo-org", "repo": "hello", "title": "{{ parameters.title }}"},
        },
        {
            "id": "comment",
            "action": "github-comment",
            "credential": "github-bot",
            "input": {
                "owner": "octo-org",
                "repo": "hello",
                "issue_number": "{{ steps.issue.output.number }}",
                "body": "Filed by the hub.",
            },
        },
    ]
    await put(hub, "/api/v1/flows/file-bug", {"id": "file-bug", "steps": steps})
    github.rate_limit_next(kind="secondary", status=429, retry_after=1)
    before = await slowdowns(hub, "github")

    run = await run_flow(hub, "file-bug", {"title": "Nightly build failed"})

    assert run["status"] == "succeeded", run
    assert [step["attempts"] for step in run["steps"]] == [2, 1]
    issue = github.repositories["octo-org/hello"].issues[1]
    assert run["steps"][0]["output"]["html_url"] == issue["html_url"]
    assert len(github.repositories["octo-org/hello"].issues) == 1
    assert issue["title"] == "Nightly build failed" and issue["comments"] == 1
    rejected, created, commented = github.requests
    assert [r.status for r in github.requests] == [429, 201, 201]
    assert created.at - rejected.at >= 0.95  # retry-after: 1
    assert commented.path == "/repos/octo-org/hello/issues/1/comments"
    assert await slowdowns(hub, "github") > before


async def test_jira_issue_step_waits_out_a_429_and_the_run_succeeds(
    hub: RunningHub, jira: JiraDouble
) -> None:
    data = {"site": jira.url, "email": jira.email, "api_token": jira.api_token}
    await put(hub, "/api/v1/credentials/jira-bot", {"type": "jira-cloud", "data": data})
    steps = [
        {
            "id": "issue",
            "action": "jira-issue",
            "credential": "jira-bot",
            "input": {
                "project": "OPS",
                "summary": "{{ parameters.summary }}",
                "issue_type": "Bug",
                "description": "{{ parameters.details }}",
            },
        },
        {
            "id": "comment",
            "action": "jira-comment",
            "credential": "jira-bot",
            "input": {"issue": "{{ steps.issue.output.key }}", "body": "Filed by the hub."},
        },
    ]
    await put(hub, "/api/v1/flows/file-jira-bug", {"id": "file-jira-bug", "steps": steps})
    jira.rate_limit_next(retry_after=1.2)
    before = await slowdowns(hub, "jira")

    run = await run_flow(
        hub, "file-jira-bug", {"summary": "Checkout fails", "details": "1. add to cart\n2. pay"}
    )

    assert run["status"] == "succeeded", run
    assert [step["attempts"] for step in run["steps"]] == [2, 1]
    assert run["steps"][0]["output"]["key"] == "OPS-1"
    assert [(r.path, r.status) for r in jira.requests] == [
        ("/rest/api/3/issue", 429),
        ("/rest/api/3/issue", 201),
        ("/rest/api/3/issue/OPS-1/comment", 201),
    ]
    assert jira.requests[1].at - jira.requests[0].at >= 1.15  # Retry-After: 1.2
    assert list(jira.issues) == ["OPS-1"] and len(jira.issues["OPS-1"]["comments"]) == 1
    description = jira.issues["OPS-1"]["fields"]["description"]
    assert description["content"][0]["content"][1] == {"type": "hardBreak"}
    assert await slowdowns(hub, "jira") > before
