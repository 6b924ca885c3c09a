"""A GitHub REST API double for contract tests, holding requests to what GitHub documents.

GitHub's OpenAPI description (github/rest-api-description, ~13 MB) is too large to keep in
shared/specs, so each implemented operation carries a JSON Schema of its request body written
from GitHub's documentation (API version 2022-11-28):

- ``issues/create``: https://docs.github.com/en/rest/issues/issues?apiVersion=2022-11-28#create-an-issue
- ``issues/create-comment``: https://docs.github.com/en/rest/issues/comments?apiVersion=2022-11-28#create-an-issue-comment
- headers and rate limits: https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api
  and https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api

The schemas are stricter than GitHub in one way: fields the docs do not name are refused
(GitHub ignores them), so a typo in the connector cannot pass unnoticed. A real HTTP server on
127.0.0.1 (``LocalServer``)::

    with GitHubDouble() as github:              # or the ``github`` fixture
        github.url, github.token
        github.requests[-1].json                # the request as it arrived
        github.rate_limit_next(kind="primary", status=403, reset_in=2)
        github.answer_next(200, b"<html>", content_type="text/html")
    assert github.violations == []

A request that breaks the docs is answered as GitHub would (400, 401, 403, 415 or 422) and recorded
in ``violations``; the fixture fails the test unless the test took it with
``take_violations()``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.doubles.server import LocalServer

__all__ = ["COMMENT_CREATE", "ISSUE_CREATE", "GitHubDouble", "GitHubRequest", "Repository"]

API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
_NULLABLE_STRING = {"type": ["string", "null"]}

# issues/create, request body (application/json), as documented.
ISSUE_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["title"],
    "additionalProperties": False,
    "properties": {
        "title": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "body": {"type": "string"},
        "assignee": _NULLABLE_STRING,  # deprecated in favour of assignees
        "milestone": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        "labels": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "description": _NULLABLE_STRING,
                            "color": _NULLABLE_STRING,
                        },
                    },
                ]
            },
        },
        "assignees": {"type": "array", "items": {"type": "string"}},
        "type": _NULLABLE_STRING,
    },
}
# issues/create-comment, request body (application/json), as documented.
COMMENT_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["body"],
    "additionalProperties": False,
    "properties": {"body": {"type": "string"}},
}
_VALIDATORS = {
    "issue": Draft202012Validator(ISSUE_CREATE),
    "comment": Draft202012Validator(COMMENT_CREATE),
}


@dataclass
class GitHubRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any
    at: float  # time.monotonic() on arrival
    status: int | None = None


@dataclass
class Repository:
    """A repository of the double: who may be assigned, which milestones exist, its issues."""

    issues_enabled: bool = True
    collaborators: set[str] = field(default_factory=lambda: {"octocat", "hubot"})
    milestones: set[int] = field(default_factory=lambda: {1})
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)


def github_error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"message": message, "documentation_url": DOCS, "status": str(status), **extra},
        status_code=status,
    )


class GitHubDouble:
    """GitHub with a few repositories and one token, served over real HTTP under ``prefix``
    (``/api/v3`` plays GitHub Enterprise Server)."""

    def __init__(self, *, prefix: str = "", token: str = "ghp_" + "d0ub1e" * 6) -> None:
        self.prefix = prefix
        self.token = token
        self._server = LocalServer(self._app())
        self._ids = itertools.count(1_000_001)
        self._lock = threading.Lock()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        """Forget requests, violations, faults and issues; restore the repositories."""
        self.requests: list[GitHubRequest] = []
        self.violations: list[str] = []
        self.read_only_tokens: set[str] = set()
        self.repositories = {
            "octo-org/hello": Repository(),
            "octo-org/no-issues": Repository(issues_enabled=False),
        }
        self._faults: deque[Callable[[], Response]] = deque()
        self.remaining = 5000

    def __enter__(self) -> GitHubDouble:
        self.url = self._server.__enter__() + self.prefix
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.__exit__(*exc_info)

    def take_violations(self) -> list[str]:
        taken, self.violations = self.violations, []
        return taken

    # -- what tests tell the double

    def rate_limit_next(
        self,
        count: int = 1,
        *,
        kind: str = "primary",
        status: int = 403,
        reset_in: float = 60.0,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` requests as an exceeded limit: ``primary`` (remaining 0,
        reset ``reset_in`` seconds on), ``secondary`` (``retry-after`` when given, else only
        the message)."""

        def answer() -> Response:
            if kind == "primary":
                response = github_error(status, "API rate limit exceeded for user ID 1.")
                response.headers.update(self._limit_headers(0, reset_in))
            else:
                response = github_error(
                    status, "You have exceeded a secondary rate limit. Please wait a few minutes."
                )
                response.headers.update(self._limit_headers(self.remaining, reset_in))
            if retry_after is not None:
                response.headers["retry-after"] = f"{retry_after:g}"
            return response

        self._faults.extend([answer] * count)

    def answer_next(
        self,
        status: int,
        body: bytes | dict[str, Any],
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request with this, whatever it asked (a proxy, a broken server)."""

        def answer() -> Response:
            if isinstance(body, dict):
                response: Response = JSONResponse(body, status_code=status)
            else:
                response = Response(body, status_code=status, media_type=content_type)
            response.headers.update(headers or {})
            return response

        self._faults.append(answer)

    def _limit_headers(self, remaining: int, reset_in: float) -> dict[str, str]:
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(5000 - remaining),
            "x-ratelimit-reset": str(int(time.time() + reset_in)),
            "x-ratelimit-resource": "core",
        }

    # -- the server

    def _app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = ...
        recorded = GitHubRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=None if body is ... else body,
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(recorded)
        try:
            response = self._answer(request, recorded, body)
        except Exception as exc:  # a bug in the double must fail the test, not hide
            self.violations.append(f"double {request.url.path}: {type(exc).__name__}: {exc}")
            response = github_error(500, "the GitHub double crashed")
        recorded.status = response.status_code
        return response

    def _answer(self, request: Request, recorded: GitHubRequest, body: Any) -> Response:
        where = f"{request.method} {recorded.path}"
        operation, repo_key, number = self._route(request.method, recorded.path)
        if operation is None:
            self.violations.append(f"double {where}: operation not implemented by the double")
            return github_error(404, "Not Found")
        refused = self._check_headers(where, recorded.headers)
        if refused is not None:
            return refused
        if body is ...:
            self.violations.append(f"request {where}: body is not JSON")
            return github_error(400, "Problems parsing JSON")
        problems = sorted(
            _VALIDATORS[operation].iter_errors(body), key=lambda e: list(e.absolute_path)
        )
        if problems:
            text = "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in problems
            )
            self.violations.append(f"request {where}: {text}")
            return github_error(422, "Invalid request.", errors=[text])
        if self._faults:
            return self._faults.popleft()()
        token = recorded.headers["authorization"].partition(" ")[2]
        if token != self.token and token not in self.read_only_tokens:
            return github_error(401, "Bad credentials")
        repository = self.repositories.get(repo_key)
        if repository is None:
            return github_error(404, "Not Found")
        if token in self.read_only_tokens:
            return github_error(403, "Resource not accessible by personal access token")
        if not repository.issues_enabled:
            return github_error(410, "Issues are disabled for this repo")
        self.remaining -= 1
        if operation == "issue":
            response = self._create_issue(repo_key, repository, body)
        else:
            response = self._create_comment(repo_key, repository, number, body)
        response.headers.update(self._limit_headers(self.remaining, 3600))
        return response

    def _route(self, method: str, path: str) -> tuple[str | None, str, int]:
        if method != "POST" or not path.startswith(self.prefix + "/repos/"):
            return None, "", 0
        parts = path.removeprefix(self.prefix + "/repos/").split("/")
        if len(parts) == 3 and parts[2] == "issues":
            return "issue", f"{parts[0]}/{parts[1]}", 0
        if len(parts) == 5 and parts[2:5:2] == ["issues", "comments"] and parts[3].isdigit():
            return "comment", f"{parts[0]}/{parts[1]}", int(parts[3])
        return None, "", 0

    def _check_headers(self, where: str, headers: dict[str, str]) -> Response | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token:
            self.violations.append(f"request {where}: no token in Authorization")
            return github_error(401, "Requires authentication")
        if not headers.get("user-agent"):
            self.violations.append(f"request {where}: no User-Agent")
            return PlainTextResponse(
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header",
                403,
            )
        if headers.get("x-github-api-version") != API_VERSION:
            self.violations.append(f"request {where}: X-GitHub-Api-Version is not {API_VERSION}")
            return github_error(400, "Unsupported 'X-GitHub-Api-Version' header")
        if headers.get("accept") != "application/vnd.github+json":
            self.violations.append(f"request {where}: Accept is not application/vnd.github+json")
            return github_error(415, "Unsupported Accept header")
        if headers.get("content-type", "").split(";")[0] != "application/json":
            self.violations.append(f"request {where}: Content-Type is not application/json")
            return github_error(415, "Unsupported Media Type")
        return None

    # -- the operations

    def _create_issue(self, repo_key: str, repository: Repository, body: Any) -> Response:
        unknown = [a for a in body.get("assignees", []) if a not in repository.collaborators]
        milestone = body.get("milestone")
        errors = [
            {"value": a, "resource": "Issue", "field": "assignees", "code": "invalid"}
            for a in unknown
        ]
        if milestone is not None and milestone not in repository.milestones:
            errors.append(
                {"value": milestone, "resource": "Issue", "field": "milestone", "code": "invalid"}
            )
        if not str(body["title"]).strip():
            errors.append({"resource": "Issue", "field": "title", "code": "missing_field"})
        if errors:
            return github_error(422, "Validation Failed", errors=errors)
        number = len(repository.issues) + 1
        api = f"{self.url}/repos/{repo_key}/issues/{number}"
        issue = {
            "id": next(self._ids),
            "node_id": f"I_kwDO{number:08d}",
            "url": api,
            "repository_url": f"{self.url}/repos/{repo_key}",
            "comments_url": f"{api}/comments",
            "html_url": f"https://github.com/{repo_key}/issues/{number}",
            "number": number,
            "state": "open",
            "title": body["title"],
            "body": body.get("body"),
            "user": {"login": "hub-bot", "id": 1, "type": "User"},
            "labels": [{"name": name} for name in body.get("labels", [])],
            "assignees": [{"login": login} for login in body.get("assignees", [])],
            "milestone": {"number": milestone} if milestone is not None else None,
            "locked": False,
            "comments": 0,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "closed_at": None,
            "author_association": "MEMBER",
        }
        repository.issues[number] = issue
        return JSONResponse(issue, status_code=201, headers={"location": api})

    def _create_comment(
        self, repo_key: str, repository: Repository, number: int, body: Any
    ) -> Response:
        if number not in repository.issues:
            return github_error(404, "Not Found")
        comment_id = next(self._ids)
        comment = {
            "id": comment_id,
            "node_id": f"IC_kwDO{comment_id}",
            "url": f"{self.url}/repos/{repo_key}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{repo_key}/issues/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/repos/{repo_key}/issues/{number}",
            "body": body["body"],
            "user": {"login": "hub-bot", "id": 1, "type": "User"},
            "author_association": "MEMBER",
        }
        repository.comments.append(comment)
        repository.issues[number]["comments"] += 1
        return JSONResponse(comment, status_code=201)
