"""Flows that file GitHub and Jira issues through a whole hub (real OpenBao and pulsar-lite),
against the doubles that check every request (tests/doubles/github.py, tests/doubles/jira.py).
The remote side answers 429 once: the step waits what it was told and the run still
succeeds, with one issue, not two."""

from __future__ import annotations

import pytest

from tests.doubles.github import GitHubDouble
from tests.doubles.jira import JiraDouble
from tests.support.databases import sqlite_only
from tests.support.hub import RunningHub

pytestmark = [pytest.mark.integration, sqlite_only]


async def test_github_issue_step_waits_out_a_429_and_the_run_succeeds(
    hub: RunningHub, github: GitHubDouble
) -> None:
    data = {"token": github.token, "api_url": github.url}
    await hub.put_credential("github-bot", "github-token", data)
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
    await hub.put_flow({"id": "file-bug", "steps": steps})
    github.rate_limit_next(kind="secondary", status=429, retry_after=1)
    before = await hub.remote_slowdowns("github")

    run = await hub.run_flow("file-bug", {"title": "Nightly build failed"})

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
    assert await hub.remote_slowdowns("github") > before


async def test_jira_issue_step_waits_out_a_429_and_the_run_succeeds(
    hub: RunningHub, jira: JiraDouble
) -> None:
    data = {"site": jira.url, "email": jira.email, "api_token": jira.api_token}
    await hub.put_credential("jira-bot", "jira-cloud", data)
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
    await hub.put_flow({"id": "file-jira-bug", "steps": steps})
    jira.rate_limit_next(retry_after=1.2)
    before = await hub.remote_slowdowns("jira")

    run = await hub.run_flow(
        "file-jira-bug", {"summary": "Checkout fails", "details": "1. add to cart\n2. pay"}
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
    assert await hub.remote_slowdowns("jira") > before
