"""A Jira Cloud double for contract tests, checked against Atlassian's own OpenAPI description.

A real HTTP server on 127.0.0.1 (``LocalServer``). Every request is validated with openapi-core
against ``shared/specs/swagger-v3.v3.json`` (path, method, parameters, body, security), and
every JSON answer of the double too, so neither side can drift from the spec unnoticed::

    with JiraDouble() as jira:                   # or the ``jira`` fixture
        ...send to jira.url as jira.email / jira.api_token...
        jira.requests[-1].body                   # the request as the spec decodes it
        jira.rate_limit_next(retry_after=1)
        jira.answer_next(200, b"<html>", content_type="text/html")
    assert jira.violations == []

A request that breaks the spec is answered 400 (401 for missing auth) with the validation
error as an ``ErrorCollection`` and recorded in ``violations``; the fixture fails the test
unless the test took it with ``take_violations()``.

Implemented: ``createIssue`` (``POST /rest/api/3/issue``) and ``addComment`` (``POST
/rest/api/3/issue/{issueIdOrKey}/comment``); any other operation answers 501 and counts as a
violation of the double.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import functools
import hmac
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from openapi_core.contrib.starlette.responses import StarletteOpenAPIResponse
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import SecurityValidationError
from openapi_core.validation.schemas import oas30_read_schema_validators_factory
from openapi_core.validation.schemas.exceptions import ValidateError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.doubles.jira_adf import ADF_SCHEMAS
from tests.doubles.server import LocalServer
from tests.doubles.violations import describe

__all__ = ["SPEC_PATH", "JiraDouble", "JiraRequest", "jira_openapi"]

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "swagger-v3.v3.json"
_JSON = "application/json"
_ERROR_COLLECTION = {"schema": {"$ref": "#/components/schemas/ErrorCollection"}}


# --- the spec, loaded once per process --------------------------------------------------------


@functools.cache
def jira_openapi() -> OpenAPI:
    """The Jira spec as openapi-core sees it, with its gaps patched *in memory*; the file
    stays byte for byte Atlassian's (see shared/specs/README.md)."""
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"Jira spec not found at {SPEC_PATH} (shared/specs checkout?)")
    with SPEC_PATH.open(encoding="utf-8") as f:
        spec = json.load(f)
    _patch_quirks(spec)
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _patch_quirks(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    # Quirk 1: the only server is https://your-domain.atlassian.net; a site is any origin.
    spec["servers"] = [
        {"url": "{site}", "variables": {"site": {"default": "https://your-domain.atlassian.net"}}}
    ]
    # Quirk 2: operations accept basicAuth, OAuth2 or ``{}`` (anonymous). openapi-core cannot
    # check OAuth2 (it warns, and warnings are errors here), and the double plays a site
    # without anonymous access: basic auth is required.
    for operations in spec["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "security" in operation:
                operation["security"] = [{"basicAuth": []}]
    # Quirk 3: rich text is documented as ADF but typed ``{}``: type it with ADF's schema.
    schemas.update(copy.deepcopy(ADF_SCHEMAS))
    body = schemas["Comment"]["properties"]["body"]
    schemas["Comment"]["properties"]["body"] = {
        "allOf": [{"$ref": "#/components/schemas/AdfDocument"}],
        "description": body.get("description", ""),
    }
    # Quirk 4: createIssue's ``fields`` is an open map; its description names the system
    # fields and says description and environment take ADF. Type those, leave the rest open.
    schemas["CreateIssueFields"] = {
        "type": "object",
        "additionalProperties": True,
        "properties": {
            "summary": {"type": "string"},
            "description": {"$ref": "#/components/schemas/AdfDocument"},
            "environment": {"$ref": "#/components/schemas/AdfDocument"},
            "project": _by("id", "key"),
            "issuetype": _by("id", "name"),
            "priority": _by("id", "name"),
            "assignee": _by("id", "accountId"),
            "labels": {"type": "array", "items": {"type": "string"}},
        },
    }
    create = spec["paths"]["/rest/api/3/issue"]["post"]["requestBody"]["content"][_JSON]
    create["schema"] = {
        "allOf": [
            create["schema"],
            {"properties": {"fields": {"$ref": "#/components/schemas/CreateIssueFields"}}},
        ]
    }
    # Quirk 5: Jira sends times as 2021-01-17T12:34:00.000+0000, as the spec's own examples
    # show, which is not the RFC 3339 ``date-time`` the schema names.
    for name in ("created", "updated"):
        schemas["Comment"]["properties"][name].pop("format", None)
    # Quirk 6: addComment's errors are documented without a body; Jira sends ErrorCollection.
    responses = spec["paths"]["/rest/api/3/issue/{issueIdOrKey}/comment"]["post"]["responses"]
    for status, response in responses.items():
        if status != "201" and "content" not in response:
            response["content"] = {_JSON: copy.deepcopy(_ERROR_COLLECTION)}


def _by(*keys: str) -> dict[str, Any]:
    """A reference to a Jira object by one of ``keys`` (``{"key": "OPS"}``)."""
    return {
        "type": "object",
        "properties": {key: {"type": "string"} for key in keys},
        "minProperties": 1,
    }


# --- what the double records ----------------------------------------------------------------


@dataclass
class JiraRequest:
    """One request as it arrived: ``json`` as sent, ``body`` as the spec decodes it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any
    body: dict[str, Any] | None
    user: str | None
    at: float  # time.monotonic() on arrival
    status: int | None = None


@dataclass
class Project:
    id: str
    issue_types: dict[str, str] = field(default_factory=lambda: {"Task": "10001", "Bug": "10002"})


def jira_errors(status: int, *messages: str, **errors: str) -> JSONResponse:
    """Jira's ``ErrorCollection``."""
    return JSONResponse({"errorMessages": list(messages), "errors": errors}, status_code=status)


class JiraDouble:
    """A Jira Cloud site with projects, users and one API token, served over real HTTP."""

    def __init__(
        self,
        *,
        email: str = "hub-bot@example.com",
        api_token: str = "ATATT3xFfGF0" + "d0ub1e" * 8,
    ) -> None:
        self.email = email
        self.api_token = api_token
        self.account_id = "712020:0d0b1e00-hub0-b0t0-0000-000000000001"
        self._server = LocalServer(self._app())
        self._ids = itertools.count(10_001)
        self._lock = threading.Lock()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        """Forget requests, violations, faults and issues; restore the site as constructed."""
        self.requests: list[JiraRequest] = []
        self.violations: list[str] = []
        self.projects = {"OPS": Project("10000"), "WEB": Project("10010")}
        self.priorities = {"Highest", "High", "Medium", "Low", "Lowest"}
        self.users = {self.account_id: "Hub Bot", "5b10ac8d82e05b22cc7d4ef5": "Mia Krystof"}
        self.read_only = False  # True: the account may browse but not create
        self.issues: dict[str, dict[str, Any]] = {}
        # Each fault: how to answer, and whether the answer is Jira's (checked against the spec).
        self._faults: deque[tuple[Callable[[], Response], bool]] = deque()

    def __enter__(self) -> JiraDouble:
        jira_openapi()  # parse the spec before the clock of any request starts
        self.url = self._server.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.__exit__(*exc_info)

    def take_violations(self) -> list[str]:
        taken, self.violations = self.violations, []
        return taken

    def add_issue(self, project: str = "OPS") -> str:
        """An existing issue of ``project``; its key."""
        issue_id = str(next(self._ids))
        key = f"{project}-{sum(i['project'] == project for i in self.issues.values()) + 1}"
        self.issues[key] = {"id": issue_id, "key": key, "project": project, "comments": []}
        return key

    # -- what tests tell the double

    def rate_limit_next(
        self,
        count: int = 1,
        *,
        retry_after: float | None = 1.0,
        reset_in: float = 60.0,
        reason: str = "jira-burst-based",
    ) -> None:
        """Answer the next ``count`` requests 429 as Jira documents: ``Retry-After`` (seconds,
        unless None), ``X-RateLimit-Reset`` (ISO 8601, to the minute), ``RateLimit-Reason``."""

        def answer() -> Response:
            reset = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=reset_in)
            response = jira_errors(429, "Rate limit exceeded.")
            response.headers.update(
                {
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
                    "RateLimit-Reason": reason,
                }
            )
            if retry_after is not None:
                response.headers["Retry-After"] = f"{retry_after:g}"
            return response

        self._faults.extend([(answer, True)] * count)

    def answer_next(
        self,
        status: int,
        body: bytes | dict[str, Any],
        *,
        content_type: str = _JSON,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request with this, unchecked (a proxy, a broken or hostile server)."""

        def answer() -> Response:
            content = json.dumps(body).encode() if isinstance(body, dict) else body
            response = Response(content, status_code=status, media_type=content_type)
            response.headers.update(headers or {})
            return response

        self._faults.append((answer, False))

    # -- every request: check it, record it, answer it, check the answer

    def _app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])

    async def _endpoint(self, request: Request) -> Response:
        try:
            return await self._check_and_answer(request)
        except Exception as exc:  # a bug in the double must fail the test, not hide
            self.violations.append(f"double {request.url.path}: {type(exc).__name__}: {exc}")
            return jira_errors(500, "the Jira double crashed")

    async def _check_and_answer(self, request: Request) -> Response:
        raw = await request.body()
        checked = StarletteOpenAPIRequest(request, raw)
        result = jira_openapi().unmarshal_request(checked)
        try:
            sent = json.loads(raw) if raw else None
        except ValueError:
            sent = None
        recorded = JiraRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=sent,
            body=result.body if isinstance(result.body, dict) else None,
            user=_basic_auth(request)[0],
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(recorded)
        where = f"{request.method} {request.url.path}"
        if result.errors:
            message = "; ".join(describe(e) for e in result.errors)
            self.violations.append(f"request {where}: {message}")
            status = (
                401 if any(isinstance(e, SecurityValidationError) for e in result.errors) else 400
            )
            response: Response = jira_errors(status, f"spec violation: {message}")
        else:
            fault, checked_answer = self._faults.popleft() if self._faults else (None, True)
            if fault is not None:
                response = fault()
            else:
                response = self._answer(request, result.parameters.path, recorded.body or {})
            if checked_answer:
                self._check_answer(where, checked, response)
        recorded.status = response.status_code
        return response

    def _answer(self, request: Request, path: dict[str, Any], body: dict[str, Any]) -> Response:
        user, token = _basic_auth(request)
        if not (
            hmac.compare_digest(user or "", self.email)
            and hmac.compare_digest(token or "", self.api_token)
        ):
            response = jira_errors(401, "Client must be authenticated to access this resource.")
            response.headers["WWW-Authenticate"] = 'Basic realm="protected-area"'
            return response
        route = (request.method, request.url.path)
        if route == ("POST", "/rest/api/3/issue"):
            return self._create_issue(body)
        if request.method == "POST" and "issueIdOrKey" in path and route[1].endswith("/comment"):
            return self._add_comment(str(path["issueIdOrKey"]), body)
        self.violations.append(f"double {request.method} {route[1]}: not implemented")
        return jira_errors(501, "not implemented by the Jira double")

    def _check_answer(
        self, where: str, checked: StarletteOpenAPIRequest, response: Response
    ) -> None:
        """Validate our own answer against the operation's responses, else (429, which no
        operation lists) against ``ErrorCollection``."""
        answer = StarletteOpenAPIResponse(response)
        errors = list(jira_openapi().unmarshal_response(checked, answer).errors)
        if len(errors) == 1 and isinstance(errors[0], ResponseNotFound):
            errors = _error_collection_errors(response)
        if errors:
            self.violations.append(f"response {where}: " + "; ".join(map(describe, errors)))

    # -- the operations

    def _create_issue(self, body: dict[str, Any]) -> Response:
        fields = body.get("fields", {})
        project = self.projects.get(fields.get("project", {}).get("key", ""))
        if project is None:
            return jira_errors(400, project="Specify a valid project ID or key")
        if self.read_only:
            return jira_errors(403, "You do not have permission to create issues in this project.")
        errors: dict[str, str] = {}
        summary = fields.get("summary")
        if not summary:
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 254:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        if fields.get("issuetype", {}).get("name") not in project.issue_types:
            errors["issuetype"] = "Specify an issue type"
        priority = fields.get("priority", {}).get("name")
        if priority is not None and priority not in self.priorities:
            errors["priority"] = f"Priority name '{priority}' is not valid"
        assignee = fields.get("assignee", {}).get("id")
        if assignee is not None and assignee not in self.users:
            errors["assignee"] = "Specified user does not exist or you do not have permission."
        for label in fields.get("labels", []):
            if " " in label:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        if errors:
            return jira_errors(400, **errors)
        key = self.add_issue(fields["project"]["key"])
        issue = self.issues[key]
        issue["fields"] = fields
        return JSONResponse(
            {"id": issue["id"], "key": key, "self": f"{self.url}/rest/api/3/issue/{issue['id']}"},
            status_code=201,
        )

    def _add_comment(self, id_or_key: str, body: dict[str, Any]) -> Response:
        issue = next((i for i in self.issues.values() if id_or_key in (i["id"], i["key"])), None)
        if issue is None:
            return jira_errors(404, "Issue does not exist or you do not have permission to see it.")
        if not body.get("body", {}).get("content"):
            return jira_errors(400, body="Comment body can not be empty!")
        comment_id = str(next(self._ids))
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        author = {
            "accountId": self.account_id,
            "accountType": "app",
            "active": True,
            "displayName": self.users[self.account_id],
            "self": f"{self.url}/rest/api/3/user?accountId={self.account_id}",
        }
        comment = {
            "self": f"{self.url}/rest/api/3/issue/{issue['id']}/comment/{comment_id}",
            "id": comment_id,
            "author": author,
            "updateAuthor": author,
            "body": body["body"],
            "created": now,
            "updated": now,
            "jsdPublic": True,
        }
        issue["comments"].append(comment)
        return JSONResponse(comment, status_code=201)


# --- helpers ----------------------------------------------------------------------------------


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, token = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, token


def _error_collection_errors(response: Response) -> list[Exception]:
    if not response.headers.get("content-type", "").startswith(_JSON):
        return [ValueError(f"a {response.status_code} that is not JSON")]
    spec = jira_openapi().spec
    schema = spec / "components" / "schemas" / "ErrorCollection"
    try:
        oas30_read_schema_validators_factory.create(spec, schema).validate(
            json.loads(response.body)
        )
    except ValidateError as exc:
        return [exc]
    return []
