"""The GitHub connector against a GitHub double that holds each request to GitHub's documented
request schema and headers (tests/doubles/github.py).

Each action runs as the engine runs it (``Action.invoke``: input validation, timeout, output
check) over real HTTP; the ``github`` fixture fails the test on any request the docs refuse.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from integrationhub.connectors.base import ActionContext
from integrationhub.connectors.github import (
    GitHubCommentCreated,
    GitHubConnector,
    GitHubCredential,
    GitHubIssueCreated,
)
from integrationhub.core.http import new_client
from integrationhub.errors import PermanentError, RateLimited, RetryableError
from tests.doubles.github import GitHubDouble

pytestmark = pytest.mark.contract

ISSUE = GitHubConnector.actions["github-issue"]
COMMENT = GitHubConnector.actions["github-comment"]
Invoke = Callable[..., Awaitable[BaseModel]]
REPO = {"owner": "octo-org", "repo": "hello"}


def credential_for(github: GitHubDouble, **changes: str) -> GitHubCredential:
    return GitHubCredential.model_validate({"token": github.token, "api_url": github.url} | changes)


@pytest.fixture
def invoke(github: GitHubDouble, http: httpx.AsyncClient) -> Invoke:
    """Run ``github-issue`` (or ``comment=True``: ``github-comment``) the way the engine does."""

    async def run(
        params: dict[str, Any],
        *,
        comment: bool = False,
        credential: GitHubCredential | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> BaseModel:
        context = ActionContext(run_id="run-1", step_id="file", attempt=1, http=client or http)
        return await (COMMENT if comment else ISSUE).invoke(
            credential=credential or credential_for(github), params=params, context=context
        )

    return run


async def open_issue(github: GitHubDouble, invoke: Invoke) -> int:
    result = await invoke({**REPO, "title": "to comment on"})
    assert isinstance(result, GitHubIssueCreated)
    github.requests.clear()
    return result.number


# --- requests arrive as GitHub documents them ----------------------------------------------------


async def test_issue_arrives_with_token_headers_and_every_field(
    github: GitHubDouble, invoke: Invoke
) -> None:
    result = await invoke(
        {
            **REPO,
            "title": "  Deploy failed  ",
            "body": "**v2.3** failed\n\nsee logs",
            "assignees": ["octocat"],
            "labels": ["bug", "ops"],
            "milestone": "1",
        }
    )

    (request,) = github.requests
    assert (request.method, request.path) == ("POST", "/repos/octo-org/hello/issues")
    assert request.headers["authorization"] == f"Bearer {github.token}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["user-agent"] == "IntegrationHub"
    assert request.json == {
        "title": "Deploy failed",
        "body": "**v2.3** failed\n\nsee logs",
        "assignees": ["octocat"],
        "labels": ["bug", "ops"],
        "milestone": 1,
    }
    issue = github.repositories["octo-org/hello"].issues[1]
    assert result == GitHubIssueCreated(
        number=1, id=issue["id"], html_url=issue["html_url"], url=issue["url"]
    )


async def test_issue_with_only_a_title_sends_only_the_title(
    github: GitHubDouble, invoke: Invoke
) -> None:
    await invoke({**REPO, "title": "Just this"})

    assert github.requests[0].json == {"title": "Just this"}


async def test_comment_arrives_on_the_issue_and_returns_its_id(
    github: GitHubDouble, invoke: Invoke
) -> None:
    number = await open_issue(github, invoke)

    result = await invoke({**REPO, "issue_number": number, "body": "Fixed in #2"}, comment=True)

    (request,) = github.requests
    assert request.path == f"/repos/octo-org/hello/issues/{number}/comments"
    assert request.json == {"body": "Fixed in #2"}
    assert request.headers["authorization"] == f"Bearer {github.token}"
    (comment,) = github.repositories["octo-org/hello"].comments
    assert result == GitHubCommentCreated(
        id=comment["id"], html_url=comment["html_url"], url=comment["url"]
    )


async def test_enterprise_server_api_url_keeps_its_api_v3_path(http: httpx.AsyncClient) -> None:
    with GitHubDouble(prefix="/api/v3") as enterprise:
        credential = GitHubCredential(token=enterprise.token, api_url=enterprise.url + "/")  # type: ignore[arg-type]
        context = ActionContext(run_id="r", step_id="s", attempt=1, http=http)

        result = await ISSUE.invoke(
            credential=credential, params={**REPO, "title": "GHES"}, context=context
        )

    assert enterprise.requests[0].path == "/api/v3/repos/octo-org/hello/issues"
    assert isinstance(result, GitHubIssueCreated) and result.number == 1
    assert enterprise.violations == []


def test_api_url_defaults_to_github_com() -> None:
    assert GitHubCredential(token="t").api_url == "https://api.github.com"  # type: ignore[arg-type]


# --- the double holds requests to the docs -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "status", "complaint"),
    [
        pytest.param(
            {"body": "no title"}, {}, 422, "'title' is a required property", id="no-title"
        ),
        pytest.param(
            {"title": "t", "labels": "bug"}, {}, 422, "is not of type 'array'", id="labels"
        ),
        pytest.param({"title": "t", "milestone": True}, {}, 422, "milestone", id="milestone-bool"),
        pytest.param(
            {"title": "t", "asignees": ["x"]}, {}, 422, "'asignees' was unexpected", id="typo"
        ),
        pytest.param({"title": "t"}, {"User-Agent": ""}, 403, "no User-Agent", id="no-user-agent"),
        pytest.param(
            {"title": "t"}, {"X-GitHub-Api-Version": "2026-03-10"}, 400, "Api-Version", id="version"
        ),
        pytest.param({"title": "t"}, {"Authorization": ""}, 401, "no token", id="no-token"),
    ],
)
async def test_double_records_a_request_that_breaks_the_docs(
    github: GitHubDouble,
    http: httpx.AsyncClient,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    complaint: str,
) -> None:
    sent = {
        "Authorization": f"Bearer {github.token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "test",
    } | headers
    response = await http.post(f"{github.url}/repos/octo-org/hello/issues", json=body, headers=sent)

    assert response.status_code == status
    (violation,) = github.take_violations()
    assert violation.startswith("request POST /repos/octo-org/hello/issues")
    assert complaint in violation
    assert github.repositories["octo-org/hello"].issues == {}


# --- answers become the hub's errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        pytest.param(
            {"owner": "octo-org", "repo": "missing", "title": "t"},
            404,
            "repository octo-org/missing does not exist, or the token cannot see it",
            id="unknown-repo",
        ),
        pytest.param(
            {"owner": "octo-org", "repo": "no-issues", "title": "t"},
            410,
            "issues are disabled for the repository: Issues are disabled for this repo",
            id="issues-disabled",
        ),
        pytest.param(
            {**REPO, "title": "t", "assignees": ["nobody"], "milestone": 99},
            422,
            "GitHub refused the input: Validation Failed: Issue.assignees invalid ('nobody'); "
            "Issue.milestone invalid (99)",
            id="validation-failed",
        ),
    ],
)
async def test_refusals_are_permanent_with_githubs_reason(
    github: GitHubDouble, invoke: Invoke, params: dict[str, Any], status: int, says: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await invoke(params)

    assert type(caught.value) is PermanentError
    assert f"answered {status}: {says}" in caught.value.message
    assert [r.status for r in github.requests] == [status]


async def test_comment_on_a_missing_issue_is_permanent_naming_the_issue(
    github: GitHubDouble, invoke: Invoke
) -> None:
    with pytest.raises(PermanentError, match=r"issue octo-org/hello#42 does not exist"):
        await invoke({**REPO, "issue_number": 42, "body": "hi"}, comment=True)


async def test_wrong_token_is_permanent_and_no_token_shows(
    github: GitHubDouble, invoke: Invoke
) -> None:
    wrong = "ghp_wrongWRONGwrong0123456789abcdefghij"

    with pytest.raises(PermanentError) as caught:
        await invoke({**REPO, "title": "t"}, credential=credential_for(github, token=wrong))

    assert "answered 401: GitHub refused the token" in caught.value.message
    assert "Bad credentials" in caught.value.message
    for text in (caught.value.message, str(caught.value), repr(caught.value)):
        assert wrong not in text and github.token not in text


async def test_token_without_write_access_is_a_permanent_permission_error(
    github: GitHubDouble, invoke: Invoke
) -> None:
    reader = "github_pat_" + "r3ad0nly" * 4
    github.read_only_tokens.add(reader)

    with pytest.raises(PermanentError) as caught:
        await invoke({**REPO, "title": "t"}, credential=credential_for(github, token=reader))

    assert type(caught.value) is PermanentError
    assert "answered 403: the token may not do this" in caught.value.message
    assert "Resource not accessible by personal access token" in caught.value.message


@pytest.mark.parametrize("status", [403, 429])
async def test_primary_rate_limit_waits_until_the_reset(
    github: GitHubDouble, invoke: Invoke, status: int
) -> None:
    github.rate_limit_next(kind="primary", status=status, reset_in=30)

    with pytest.raises(RateLimited) as caught:
        await invoke({**REPO, "title": "t"})

    assert caught.value.retry_after == pytest.approx(30, abs=1.5)
    assert f"answered {status}, rate limited: API rate limit exceeded" in caught.value.message
    assert github.repositories["octo-org/hello"].issues == {}


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [(403, 7, 7.0), (429, 2.5, 2.5), (403, None, 60.0), (429, None, 60.0)],
)
async def test_secondary_rate_limit_waits_retry_after_or_a_minute(
    github: GitHubDouble, invoke: Invoke, status: int, retry_after: float | None, wait: float
) -> None:
    github.rate_limit_next(kind="secondary", status=status, retry_after=retry_after)

    with pytest.raises(RateLimited) as caught:
        await invoke({**REPO, "issue_number": 1, "body": "hi"}, comment=True)

    assert caught.value.retry_after == pytest.approx(wait)
    assert "secondary rate limit" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retryable(
    github: GitHubDouble, invoke: Invoke, status: int
) -> None:
    github.answer_next(status, {"message": "Server Error"}, headers={"retry-after": "3"})

    with pytest.raises(RetryableError) as caught:
        await invoke({**REPO, "title": "t"})

    assert not isinstance(caught.value, RateLimited)
    assert f"answered {status}: Server Error" in caught.value.message
    assert caught.value.retry_after == 3.0


async def test_unreachable_api_is_retryable(invoke: Invoke, github: GitHubDouble) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(RetryableError, match="ConnectError"):
        await invoke(
            {**REPO, "title": "t"},
            credential=credential_for(github, api_url=f"http://127.0.0.1:{port}"),
        )


# --- malformed and hostile answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "says"),
    [
        pytest.param(
            200,
            b"<html><body>Sign in</body></html>",
            "text/html",
            PermanentError,
            "answered 200 with a body that is not what GitHub sends (text/html)",
            id="html-200",
        ),
        pytest.param(
            201,
            {"id": 1, "title": "no number"},
            "application/json",
            PermanentError,
            "not what GitHub sends (application/json)",
            id="json-missing-fields",
        ),
        pytest.param(
            502,
            b"<html>\n<h1>502 Bad Gateway</h1>\n</html>",
            "text/html",
            RetryableError,
            "answered 502: <html> <h1>502 Bad Gateway</h1> </html>",
            id="html-502",
        ),
        pytest.param(
            400,
            b"",
            "text/plain",
            PermanentError,
            "answered 400: GitHub refused the request: an empty body",
            id="empty-400",
        ),
        pytest.param(
            401,
            {"message": "Bad credentials: Authorization: Bearer ghp_" + "e" * 36 + "1"},
            "application/json",
            PermanentError,
            "Authorization: [redacted]",
            id="echoed-token",
        ),
    ],
)
async def test_malformed_answers_give_clear_errors(
    github: GitHubDouble,
    invoke: Invoke,
    status: int,
    body: bytes | dict[str, Any],
    content_type: str,
    error: type[Exception],
    says: str,
) -> None:
    github.answer_next(status, body, content_type=content_type)

    with pytest.raises(error) as caught:
        await invoke({**REPO, "title": "t"})

    assert type(caught.value) is error
    assert says in str(caught.value)
    assert "ghp_" not in str(caught.value)


async def test_an_answer_echoing_the_request_never_shows_the_token(
    github: GitHubDouble, invoke: Invoke
) -> None:
    echo = f"request headers: authorization: Bearer {github.token}; token {github.token}"
    github.answer_next(400, {"message": echo, "errors": [github.token]})

    with pytest.raises(PermanentError) as caught:
        await invoke({**REPO, "title": "t"})

    assert github.token not in caught.value.message
    assert "[redacted]" in caught.value.message


async def test_huge_error_body_is_cut_to_a_short_message(
    github: GitHubDouble, invoke: Invoke
) -> None:
    github.answer_next(422, {"message": "x" * 500_000, "errors": [{"code": "y" * 9000}] * 5000})

    with pytest.raises(PermanentError) as caught:
        await invoke({**REPO, "title": "t"})

    assert len(caught.value.message) < 500


async def test_body_over_the_clients_cap_is_refused_not_read(
    github: GitHubDouble, invoke: Invoke
) -> None:
    github.answer_next(201, b"[" + b"0," * 600_000 + b"0]")

    async with new_client(max_response_bytes=1_000_000, allow=["127.0.0.1/32"]) as small:
        with pytest.raises(PermanentError, match="larger than the cap of 1000000 bytes"):
            await invoke({**REPO, "title": "t"}, client=small)


async def test_redirect_of_a_renamed_repository_is_permanent_naming_the_new_place(
    github: GitHubDouble, invoke: Invoke
) -> None:
    moved = f"{github.url}/repositories/4242/issues"
    github.answer_next(
        307, {"message": "Temporary Redirect", "url": moved}, headers={"location": moved}
    )

    with pytest.raises(PermanentError, match=f"a redirect to {moved}: the repository was renamed"):
        await invoke({**REPO, "title": "t"})

    assert len(github.requests) == 1


# --- bad input never reaches GitHub --------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        pytest.param({"owner": "octo-org", "title": "t"}, "repo: Field required", id="no-repo"),
        pytest.param({**REPO}, "title: Field required", id="no-title"),
        pytest.param({**REPO, "title": "   "}, "at least 1 character", id="blank-title"),
        pytest.param({**REPO, "title": "t" * 257}, "at most 256", id="long-title"),
        pytest.param({**REPO, "title": "a\r\nb"}, "one line", id="crlf-title"),
        pytest.param({**REPO, "title": "t", "body": "x" * 65_537}, "at most 65536", id="long-body"),
        pytest.param({**REPO, "title": "t", "body": "a\x00b"}, "NUL", id="nul-body"),
        pytest.param({**REPO, "owner": "octo/../x", "title": "t"}, "pattern", id="owner-path"),
        pytest.param({**REPO, "repo": "..", "title": "t"}, "relative path", id="repo-dotdot"),
        pytest.param({**REPO, "repo": "a?b", "title": "t"}, "pattern", id="repo-query"),
        pytest.param({**REPO, "title": "t", "assignees": ["a"] * 11}, "at most 10", id="assignees"),
        pytest.param({**REPO, "title": "t", "assignees": ["-x"]}, "pattern", id="bad-login"),
        pytest.param({**REPO, "title": "t", "labels": "bug"}, "valid list", id="labels-not-list"),
        pytest.param({**REPO, "title": "t", "labels": ["l" * 51]}, "at most 50", id="long-label"),
        pytest.param({**REPO, "title": "t", "milestone": 0}, "greater than 0", id="milestone-0"),
        pytest.param(
            {**REPO, "title": "t", "milestone": True}, "not a boolean", id="milestone-bool"
        ),
        pytest.param(
            {**REPO, "title": "t", "milestone": "v1"}, "valid integer", id="milestone-name"
        ),
        pytest.param({**REPO, "title": "t", "state": "open"}, "Extra inputs", id="unknown-field"),
    ],
)
async def test_invalid_issue_input_is_refused_before_any_request(
    github: GitHubDouble, invoke: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for github-issue") as caught:
        await invoke(params)

    assert complaint in caught.value.message
    assert github.requests == []


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        pytest.param({**REPO, "body": "hi"}, "issue_number: Field required", id="no-number"),
        pytest.param({**REPO, "issue_number": -1, "body": "hi"}, "greater than 0", id="negative"),
        pytest.param({**REPO, "issue_number": "1/x", "body": "hi"}, "valid integer", id="path"),
        pytest.param({**REPO, "issue_number": 1, "body": " \n "}, "must not be empty", id="blank"),
        pytest.param({**REPO, "issue_number": 1}, "body: Field required", id="no-body"),
    ],
)
async def test_invalid_comment_input_is_refused_before_any_request(
    github: GitHubDouble, invoke: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for github-comment") as caught:
        await invoke(params, comment=True)

    assert complaint in caught.value.message
    assert github.requests == []


# --- the credential ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "api_url",
    ["ftp://github.example", "api.github.com", "https://user:pw@github.example", "https://x/?a=1"],
)
def test_api_url_that_is_not_a_plain_http_url_is_refused(api_url: str) -> None:
    with pytest.raises(ValidationError):
        GitHubCredential(token="t", api_url=api_url)  # type: ignore[arg-type]


def test_token_is_the_only_secret_and_is_masked() -> None:
    credential = GitHubCredential(token="ghp_s3cr3t")  # type: ignore[arg-type]

    assert GitHubCredential.secret_fields() == ["token"]
    assert "ghp_s3cr3t" not in repr(credential) and "ghp_s3cr3t" not in str(credential.model_dump())
