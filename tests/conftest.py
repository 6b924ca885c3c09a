"""Fixtures for every test kind: vendor API doubles that fail the test on any spec violation,
and the hub's guarded HTTP client admitting them.

Each double is served once per session (starting uvicorn costs ~0.2 s) and reset per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from integrationhub.core.http import new_client
from tests.doubles.github import GitHubDouble
from tests.doubles.jira import JiraDouble
from tests.doubles.slack import SlackDouble
from tests.doubles.violations import checked
from tests.doubles.zulip import ZulipDouble


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client connectors send with, its SSRF guard admitting the doubles on 127.0.0.1."""
    async with new_client(timeout=5.0, allow=["127.0.0.1/32"]) as client:
        yield client


@pytest.fixture(scope="session")
def github_server() -> Iterator[GitHubDouble]:
    with GitHubDouble() as double:
        yield double


@pytest.fixture
def github(github_server: GitHubDouble) -> Iterator[GitHubDouble]:
    yield from checked(github_server, "GitHub")


@pytest.fixture(scope="session")
def jira_server() -> Iterator[JiraDouble]:
    with JiraDouble() as double:
        yield double


@pytest.fixture
def jira(jira_server: JiraDouble) -> Iterator[JiraDouble]:
    yield from checked(jira_server, "Jira")


@pytest.fixture(scope="session")
def slack_server() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        yield double


@pytest.fixture
def slack(slack_server: SlackDouble) -> Iterator[SlackDouble]:
    yield from checked(slack_server, "Slack")


@pytest.fixture(scope="session")
def zulip_server() -> Iterator[ZulipDouble]:
    with ZulipDouble() as double:
        yield double


@pytest.fixture
def zulip(zulip_server: ZulipDouble) -> Iterator[ZulipDouble]:
    yield from checked(zulip_server, "Zulip")
