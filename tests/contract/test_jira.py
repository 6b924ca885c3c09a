"""The Jira Cloud connector against a Jira double that checks every request, and its own
answers, with Atlassian's OpenAPI description (tests/doubles/jira.py).

Each action runs as the engine runs it (``Action.invoke``: input validation, timeout, output
check) over real HTTP; the ``jira`` fixture fails the test on any spec violation, so every ADF
document the connector sends is checked against ADF's schema on the way.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from integrationhub.connectors.base import ActionContext
from integrationhub.connectors.jira import (
    JiraCommentCreated,
    JiraConnector,
    JiraCredential,
    JiraIssueCreated,
    text_to_adf,
)
from integrationhub.core.http import new_client
from integrationhub.errors import PermanentError, RateLimited, RetryableError
from tests.doubles.jira import JiraDouble

pytestmark = pytest.mark.contract

ISSUE = JiraConnector.actions["jira-issue"]
COMMENT = JiraConnector.actions["jira-comment"]
Invoke = Callable[..., Awaitable[BaseModel]]
TASK = {"project": "OPS", "summary": "Disk almost full", "issue_type": "Task"}
RICH = {
    "type": "doc",
    "version": 1,
    "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Why"}]},
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": "See "},
                {"type": "text", "text": "runbook", "marks": [{"type": "strong"}]},
            ],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}],
                }
            ],
        },
    ],
}


def credential_for(jira: JiraDouble, **changes: str) -> JiraCredential:
    data = {"site": jira.url, "email": jira.email, "api_token": jira.api_token} | changes
    return JiraCredential.model_validate(data)


@pytest.fixture
def invoke(jira: JiraDouble, http: httpx.AsyncClient) -> Invoke:
    """Run ``jira-issue`` (or ``comment=True``: ``jira-comment``) the way the engine does."""

    async def run(
        params: dict[str, Any],
        *,
        comment: bool = False,
        credential: JiraCredential | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> BaseModel:
        context = ActionContext(run_id="run-1", step_id="file", attempt=1, http=client or http)
        return await (COMMENT if comment else ISSUE).invoke(
            credential=credential or credential_for(jira), params=params, context=context
        )

    return run


def basic(jira: JiraDouble) -> str:
    return "Basic " + base64.b64encode(f"{jira.email}:{jira.api_token}".encode()).decode()


# --- requests arrive as the spec describes them --------------------------------------------------


async def test_issue_arrives_with_basic_auth_and_text_as_adf(
    jira: JiraDouble, invoke: Invoke
) -> None:
    result = await invoke(
        {
            **TASK,
            "description": "Disk /var is at 95%.\nCheck the logs.\n\nThen rotate.",
            "labels": ["ops", "disk"],
            "priority": "High",
            "assignee": "5b10ac8d82e05b22cc7d4ef5",
        }
    )

    (request,) = jira.requests
    assert (request.method, request.path) == ("POST", "/rest/api/3/issue")
    assert request.headers["authorization"] == basic(jira)
    assert request.headers["accept"] == "application/json"
    assert request.json == {
        "fields": {
            "project": {"key": "OPS"},
            "summary": "Disk almost full",
            "issuetype": {"name": "Task"},
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "text", "text": "Disk /var is at 95%."},
                            {"type": "hardBreak"},
                            {"type": "text", "text": "Check the logs."},
                        ],
                    },
                    {"type": "paragraph", "content": [{"type": "text", "text": "Then rotate."}]},
                ],
            },
            "labels": ["ops", "disk"],
            "priority": {"name": "High"},
            "assignee": {"id": "5b10ac8d82e05b22cc7d4ef5"},
        }
    }
    issue = jira.issues["OPS-1"]
    assert result == JiraIssueCreated(
        id=issue["id"],
        key="OPS-1",
        url=f"{jira.url}/rest/api/3/issue/{issue['id']}",
        browse_url=f"{jira.url}/browse/OPS-1",
    )


async def test_issue_without_options_sends_only_the_required_fields(
    jira: JiraDouble, invoke: Invoke
) -> None:
    await invoke({**TASK, "description": "  \n  "})

    assert jira.requests[0].json == {
        "fields": {
            "project": {"key": "OPS"},
            "summary": "Disk almost full",
            "issuetype": {"name": "Task"},
        }
    }


async def test_adf_description_is_sent_as_given(jira: JiraDouble, invoke: Invoke) -> None:
    await invoke({**TASK, "description": RICH})

    assert jira.requests[0].json["fields"]["description"] == RICH


@pytest.mark.parametrize("body", ["Deployed in **v2.3**", RICH], ids=["text", "adf"])
async def test_comment_arrives_as_adf_on_the_issue(
    jira: JiraDouble, invoke: Invoke, body: str | dict[str, Any]
) -> None:
    key = jira.add_issue()

    result = await invoke({"issue": key, "body": body}, comment=True)

    (request,) = jira.requests
    assert request.path == f"/rest/api/3/issue/{key}/comment"
    assert request.headers["authorization"] == basic(jira)
    expected = text_to_adf(body) if isinstance(body, str) else body
    assert request.json == {"body": expected}
    (comment,) = jira.issues[key]["comments"]
    assert comment["body"] == expected
    assert result == JiraCommentCreated(id=comment["id"], issue=key, url=comment["self"])


async def test_comment_by_issue_id_reaches_the_issue(jira: JiraDouble, invoke: Invoke) -> None:
    key = jira.add_issue()
    issue_id = jira.issues[key]["id"]

    await invoke({"issue": issue_id, "body": "by id"}, comment=True)

    assert jira.requests[0].path == f"/rest/api/3/issue/{issue_id}/comment"
    assert len(jira.issues[key]["comments"]) == 1


@pytest.mark.parametrize(
    ("text", "paragraphs"),
    [
        ("one line", [[{"type": "text", "text": "one line"}]]),
        (
            "a\r\nb",
            [[{"type": "text", "text": "a"}, {"type": "hardBreak"}, {"type": "text", "text": "b"}]],
        ),
        ("a\n\n\n\nb", [[{"type": "text", "text": "a"}], [{"type": "text", "text": "b"}]]),
        ("a\n \n  b", [[{"type": "text", "text": "a"}], [{"type": "text", "text": "  b"}]]),
        ("\n\nlead", [[{"type": "text", "text": "lead"}]]),
        ("a\n\nb\n", [[{"type": "text", "text": "a"}], [{"type": "text", "text": "b"}]]),
    ],
)
def test_text_becomes_paragraphs_and_hard_breaks_without_empty_text(
    text: str, paragraphs: list[list[dict[str, Any]]]
) -> None:
    assert text_to_adf(text) == {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": inline} for inline in paragraphs],
    }


# --- the double holds requests to the spec -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "auth", "status", "complaint"),
    [
        pytest.param(
            "/rest/api/3/issue/OPS-1/comment",
            {"body": "plain"},
            True,
            400,
            "body: 'plain' is not of type 'object'",
            id="comment-not-adf",
        ),
        pytest.param(
            "/rest/api/3/issue",
            {
                "fields": {
                    "summary": "s",
                    "description": {"type": "doc", "version": 2, "content": []},
                }
            },
            True,
            400,
            "fields/description/version: 2 is not one of [1]",
            id="adf-version",
        ),
        pytest.param(
            "/rest/api/3/issue/OPS-1/comment",
            {
                "body": {
                    "type": "doc",
                    "version": 1,
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}],
                }
            },
            True,
            400,
            "body/content/0",
            id="adf-empty-text",
        ),
        pytest.param(
            "/rest/api/3/issue",
            {"fields": {"labels": "ops"}},
            True,
            400,
            "fields/labels: 'ops' is not of type 'array'",
            id="labels-not-list",
        ),
        pytest.param(
            "/rest/api/3/issue/OPS-1/comment",
            {"body": RICH},
            False,
            401,
            "Security not found",
            id="no-auth",
        ),
    ],
)
async def test_double_records_a_request_that_breaks_the_spec(
    jira: JiraDouble,
    http: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    auth: bool,
    status: int,
    complaint: str,
) -> None:
    jira.add_issue()

    response = await http.post(
        f"{jira.url}{path}", json=body, auth=(jira.email, jira.api_token) if auth else None
    )

    assert response.status_code == status
    (violation,) = jira.take_violations()
    assert violation.startswith(f"request POST {path}")
    assert complaint in violation
    assert complaint in response.json()["errorMessages"][0]


# --- answers become the hub's errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "says"),
    [
        pytest.param(
            {**TASK, "project": "NOPE"}, "project: Specify a valid project ID or key", id="project"
        ),
        pytest.param({**TASK, "issue_type": "Epic"}, "issuetype: Specify an issue type", id="type"),
        pytest.param(
            {**TASK, "issue_type": "Epic", "priority": "Urgent", "assignee": "557058:nobody"},
            "issuetype: Specify an issue type; priority: Priority name 'Urgent' is not valid; "
            "assignee: Specified user does not exist",
            id="several",
        ),
    ],
)
async def test_jira_refusal_is_permanent_with_jiras_errors_summarised(
    jira: JiraDouble, invoke: Invoke, params: dict[str, Any], says: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await invoke(params)

    assert type(caught.value) is PermanentError
    assert caught.value.message.startswith(
        "Jira POST /rest/api/3/issue answered 400: Jira refused the request: "
    )
    assert says in caught.value.message
    assert jira.issues == {}


async def test_comment_on_a_missing_issue_is_permanent_naming_it(
    jira: JiraDouble, invoke: Invoke
) -> None:
    with pytest.raises(PermanentError) as caught:
        await invoke({"issue": "OPS-404", "body": "hi"}, comment=True)

    assert caught.value.message == (
        "Jira POST /rest/api/3/issue/OPS-404/comment answered 404: issue OPS-404 does not "
        "exist, or the account cannot see it: Issue does not exist or you do not have "
        "permission to see it."
    )


async def test_wrong_api_token_is_permanent_and_no_secret_shows(
    jira: JiraDouble, invoke: Invoke
) -> None:
    wrong = "ATATT3xFfGF0wrongWRONGwrong0123456789"

    with pytest.raises(PermanentError) as caught:
        await invoke(TASK, credential=credential_for(jira, api_token=wrong))

    assert "answered 401: Jira refused the email and API token" in caught.value.message
    assert "Client must be authenticated" in caught.value.message
    for text in (caught.value.message, str(caught.value), repr(caught.value)):
        assert wrong not in text and jira.api_token not in text
    assert jira.requests[0].user == jira.email


async def test_missing_permission_is_permanent(jira: JiraDouble, invoke: Invoke) -> None:
    jira.read_only = True

    with pytest.raises(PermanentError, match="answered 403: the account may not do this"):
        await invoke(TASK)


async def test_rate_limit_is_rate_limited_waiting_retry_after(
    jira: JiraDouble, invoke: Invoke
) -> None:
    jira.rate_limit_next(retry_after=2.5, reason="jira-per-issue-on-write")

    with pytest.raises(RateLimited) as caught:
        await invoke({"issue": jira.add_issue(), "body": "hi"}, comment=True)

    assert caught.value.retry_after == 2.5
    assert "answered 429, rate limited (jira-per-issue-on-write)" in caught.value.message


async def test_rate_limit_without_retry_after_waits_until_the_iso_8601_reset(
    jira: JiraDouble, invoke: Invoke
) -> None:
    jira.rate_limit_next(retry_after=None, reset_in=150)

    with pytest.raises(RateLimited) as caught:
        await invoke(TASK)

    # Jira's reset is to the minute: somewhere in the minute before the true reset.
    assert caught.value.retry_after is not None
    assert 89 <= caught.value.retry_after <= 151


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retryable(jira: JiraDouble, invoke: Invoke, status: int) -> None:
    jira.answer_next(
        status, {"errorMessages": ["Internal server error"]}, headers={"Retry-After": "4"}
    )

    with pytest.raises(RetryableError) as caught:
        await invoke(TASK)

    assert not isinstance(caught.value, RateLimited)
    assert f"answered {status}: Internal server error" in caught.value.message
    assert caught.value.retry_after == 4.0


async def test_unreachable_site_is_retryable(jira: JiraDouble, invoke: Invoke) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(RetryableError, match="ConnectError"):
        await invoke(TASK, credential=credential_for(jira, site=f"http://127.0.0.1:{port}"))


# --- malformed and hostile answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "says"),
    [
        pytest.param(
            201,
            b"<html><body>Log in to Jira</body></html>",
            "text/html",
            PermanentError,
            "answered 201 with a body that is not what Jira sends (text/html)",
            id="html-201",
        ),
        pytest.param(
            201,
            {"key": "OPS-1"},
            "application/json",
            PermanentError,
            "not what Jira sends (application/json)",
            id="json-missing-id",
        ),
        pytest.param(
            401,
            b"Client must be authenticated to access this resource.",
            "text/plain",
            PermanentError,
            "answered 401: Jira refused the email and API token (wrong, revoked "
            "or expired): Client must be authenticated",
            id="text-401",
        ),
        pytest.param(
            503,
            b"<html>\n<title>Site temporarily unavailable</title>\n</html>",
            "text/html",
            RetryableError,
            "answered 503: <html> <title>Site temporarily unavailable</title>",
            id="html-503",
        ),
        pytest.param(
            400,
            {"message": "Bad request: Authorization: Basic aHViOkFUQVRUM3hGZkdGMDEyMzQ1"},
            "application/json",
            PermanentError,
            "Authorization: [redacted]",
            id="echoed-basic",
        ),
        pytest.param(
            302,
            b"",
            "text/plain",
            PermanentError,
            "answered 302, a redirect to https://id.atlassian.com/login: check the credential's "
            "site",
            id="redirect-to-login",
        ),
    ],
)
async def test_malformed_answers_give_clear_errors(
    jira: JiraDouble,
    invoke: Invoke,
    status: int,
    body: bytes | dict[str, Any],
    content_type: str,
    error: type[Exception],
    says: str,
) -> None:
    headers = {"Location": "https://id.atlassian.com/login"} if status == 302 else None
    jira.answer_next(status, body, content_type=content_type, headers=headers)

    with pytest.raises(error) as caught:
        await invoke(TASK)

    assert type(caught.value) is error
    assert says in str(caught.value)


async def test_an_answer_echoing_the_token_never_shows_it(jira: JiraDouble, invoke: Invoke) -> None:
    echo = f"you sent {jira.api_token} as {basic(jira)}"
    jira.answer_next(400, {"errorMessages": [echo], "errors": {"token": jira.api_token}})

    with pytest.raises(PermanentError) as caught:
        await invoke(TASK)

    assert jira.api_token not in caught.value.message
    assert basic(jira).split()[1] not in caught.value.message
    assert "[redacted]" in caught.value.message


async def test_huge_error_body_is_cut_to_a_short_message(jira: JiraDouble, invoke: Invoke) -> None:
    errors = {f"customfield_{n}": "x" * 5000 for n in range(2000)}
    jira.answer_next(400, {"errorMessages": ["y" * 100_000] * 50, "errors": errors})

    with pytest.raises(PermanentError) as caught:
        await invoke(TASK)

    assert len(caught.value.message) < 500


async def test_body_over_the_clients_cap_is_refused_not_read(
    jira: JiraDouble, invoke: Invoke
) -> None:
    jira.answer_next(201, b"{" + b'"a": 0, ' * 200_000 + b'"id": "1"}')

    async with new_client(max_response_bytes=1_000_000, allow=["127.0.0.1/32"]) as small:
        with pytest.raises(PermanentError, match="larger than the cap of 1000000 bytes"):
            await invoke(TASK, client=small)


# --- bad input never reaches Jira ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        pytest.param(
            {k: v for k, v in TASK.items() if k != "summary"},
            "summary: Field required",
            id="no-summary",
        ),
        pytest.param({**TASK, "summary": " "}, "at least 1 character", id="blank-summary"),
        pytest.param({**TASK, "summary": "s" * 255}, "at most 254", id="long-summary"),
        pytest.param({**TASK, "summary": "a\nb"}, "one line", id="newline-summary"),
        pytest.param({**TASK, "project": "ops"}, "pattern", id="lower-case-project"),
        pytest.param({**TASK, "project": "O/../X"}, "pattern", id="project-path"),
        pytest.param({**TASK, "issue_type": ""}, "at least 1 character", id="no-type"),
        pytest.param({**TASK, "labels": ["two words"]}, "pattern", id="label-with-space"),
        pytest.param({**TASK, "assignee": "a b"}, "pattern", id="assignee-not-account-id"),
        pytest.param({**TASK, "description": "x" * 32_768}, "at most 32767", id="long-text"),
        pytest.param({**TASK, "description": "a\x00b"}, "NUL", id="nul"),
        pytest.param({**TASK, "description": 5}, "text or an ADF document", id="number"),
        pytest.param({**TASK, "description": {"type": "paragraph"}}, '"type": "doc"', id="not-doc"),
        pytest.param(
            {**TASK, "description": {"type": "doc", "version": 1, "content": "x"}},
            "doc.content must be a list",
            id="content-not-list",
        ),
        pytest.param(
            {
                **TASK,
                "description": {
                    "type": "doc",
                    "version": 1,
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}],
                },
            },
            "doc.content[0].content[0] is a text node without text",
            id="empty-text",
        ),
        pytest.param(
            {**TASK, "description": {"type": "doc", "version": 1, "content": [[]]}},
            "doc.content[0] must be a node",
            id="node-not-object",
        ),
        pytest.param({**TASK, "reporter": "x"}, "Extra inputs", id="unknown-field"),
    ],
)
async def test_invalid_issue_input_is_refused_before_any_request(
    jira: JiraDouble, invoke: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for jira-issue") as caught:
        await invoke(params)

    assert complaint in caught.value.message
    assert jira.requests == []


def test_deeply_nested_adf_is_refused() -> None:
    node: dict[str, Any] = {"type": "paragraph", "content": [{"type": "text", "text": "x"}]}
    for _ in range(40):
        node = {"type": "blockquote", "content": [node]}

    with pytest.raises(PermanentError, match="nests deeper than 30 levels"):
        ISSUE.validate_input(
            {**TASK, "description": {"type": "doc", "version": 1, "content": [node]}}
        )


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        pytest.param({"body": "hi"}, "issue: Field required", id="no-issue"),
        pytest.param({"issue": "OPS-1/../x", "body": "hi"}, "pattern", id="issue-path"),
        pytest.param({"issue": "OPS-0", "body": "hi"}, "pattern", id="issue-zero"),
        pytest.param({"issue": "OPS-1", "body": "\n \n"}, "must not be empty", id="blank"),
        pytest.param(
            {"issue": "OPS-1", "body": {"type": "doc", "version": 1, "content": []}},
            "empty ADF document",
            id="empty-adf",
        ),
    ],
)
async def test_invalid_comment_input_is_refused_before_any_request(
    jira: JiraDouble, invoke: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for jira-comment") as caught:
        await invoke(params, comment=True)

    assert complaint in caught.value.message
    assert jira.requests == []


# --- the credential ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "normalised"),
    [
        ("https://acme.atlassian.net/", "https://acme.atlassian.net"),
        (
            " https://api.atlassian.com/ex/jira/1a2b-3c4d ",
            "https://api.atlassian.com/ex/jira/1a2b-3c4d",
        ),
    ],
)
def test_site_is_normalised(site: str, normalised: str) -> None:
    credential = JiraCredential(site=site, email="bot@example.com", api_token="t")  # type: ignore[arg-type]

    assert credential.site == normalised


@pytest.mark.parametrize(
    "site", ["acme.atlassian.net", "ftp://acme.atlassian.net", "https://u:p@acme.atlassian.net"]
)
def test_site_that_is_not_a_plain_http_url_is_refused(site: str) -> None:
    with pytest.raises(ValidationError):
        JiraCredential(site=site, email="bot@example.com", api_token="t")  # type: ignore[arg-type]


def test_api_token_is_the_only_secret_and_is_masked() -> None:
    credential = JiraCredential(
        site="https://acme.atlassian.net", email="bot@example.com", api_token="ATATTs3cr3t"
    )  # type: ignore[arg-type]

    assert JiraCredential.secret_fields() == ["api_token"]
    assert "ATATTs3cr3t" not in repr(credential)
    assert "ATATTs3cr3t" not in str(credential.model_dump())


async def test_scoped_token_goes_through_the_gateway_and_has_no_browse_url() -> None:
    site = "https://api.atlassian.com/ex/jira/1a2b-3c4d"
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "1", "key": "OPS-1", "self": f"{site}/x/1"})

    credential = JiraCredential(site=site, email="bot@example.com", api_token="t")  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.MockTransport(gateway)) as client:
        context = ActionContext(run_id="r", step_id="s", attempt=1, http=client)
        result = await ISSUE.invoke(credential=credential, params=TASK, context=context)

    assert str(seen[0].url) == f"{site}/rest/api/3/issue"
    assert isinstance(result, JiraIssueCreated) and result.browse_url is None
