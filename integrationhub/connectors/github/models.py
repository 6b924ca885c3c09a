"""What the GitHub connector takes and gives: the credential, the actions' inputs and outputs.

The limits are GitHub's own (a title of 256 characters, a body or comment of 65536, at most
10 assignees, label names of 50), so bad input fails here, before any request, instead of as a
422 after a retry budget is spent. Owner and repository names become path segments: their
patterns leave no room for ``/``, ``..``, ``?`` or ``#``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
)

from integrationhub.connectors.auth import AuthScheme, BearerToken
from integrationhub.connectors.base import Credential
from integrationhub.connectors.fields import no_nul, one_line
from integrationhub.connectors.sites import site_url

__all__ = [
    "DEFAULT_API_URL",
    "CreateGitHubComment",
    "CreateGitHubIssue",
    "GitHubCommentCreated",
    "GitHubCredential",
    "GitHubIssueCreated",
]

DEFAULT_API_URL = "https://api.github.com"
MAX_TITLE_LENGTH = 256
MAX_BODY_LENGTH = 65_536
MAX_ASSIGNEES = 10
MAX_LABEL_LENGTH = 50


def _not_bool(value: object) -> object:
    # Pydantic would read ``true`` as 1; a template that renders a flag is a mistake.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _not_dots(value: str) -> str:
    if value in (".", ".."):
        raise ValueError("must be a repository name, not a relative path")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


ApiUrl = Annotated[str, AfterValidator(site_url(example="https://api.github.com", use="token"))]
# GitHub logins: letters, digits and hyphens (and ``_`` in Enterprise Managed Users' logins).
Login = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
    ),
]
RepoName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$"),
    AfterValidator(_not_dots),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_LENGTH),
    AfterValidator(one_line),
]
Body = Annotated[str, StringConstraints(max_length=MAX_BODY_LENGTH), AfterValidator(no_nul)]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LABEL_LENGTH),
    AfterValidator(one_line),
]
Number = Annotated[int, Field(gt=0), BeforeValidator(_not_bool)]


class GitHubCredential(Credential):
    """A GitHub token (fine-grained or classic personal access token, or an app installation
    token) and the API it is for: GitHub.com, or GitHub Enterprise Server's /api/v3."""

    type: ClassVar[str] = "github-token"
    auth: ClassVar[AuthScheme] = BearerToken("token")

    token: SecretStr = Field(min_length=1)
    api_url: ApiUrl = Field(
        DEFAULT_API_URL,
        description="https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server",
    )


class _Repository(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: Login = Field(description="the account owning the repository, e.g. octo-org")
    repo: RepoName = Field(description="the repository's name, without .git")


class CreateGitHubIssue(_Repository):
    """Open an issue in ``owner/repo`` with a title and, optionally, a Markdown body,
    assignees, labels and a milestone (by number)."""

    title: Title
    body: Body | None = Field(None, description="GitHub Flavored Markdown")
    assignees: list[Login] = Field(default_factory=list, max_length=MAX_ASSIGNEES)
    labels: list[Label] = Field(
        default_factory=list,
        max_length=100,
        description="label names; GitHub creates those the repository lacks",
    )
    milestone: Number | None = Field(None, description="the milestone's number")

    def payload(self) -> dict[str, Any]:
        """The JSON body of ``POST /repos/{owner}/{repo}/issues``: only what was given."""
        body: dict[str, Any] = {"title": self.title}
        if self.body is not None:
            body["body"] = self.body
        if self.assignees:
            body["assignees"] = self.assignees
        if self.labels:
            body["labels"] = self.labels
        if self.milestone is not None:
            body["milestone"] = self.milestone
        return body


class CreateGitHubComment(_Repository):
    """Comment on issue (or pull request) ``issue_number`` of ``owner/repo``."""

    issue_number: Number
    body: Annotated[Body, AfterValidator(_not_blank)] = Field(
        description="GitHub Flavored Markdown"
    )


class GitHubIssueCreated(BaseModel):
    """The issue GitHub opened: its number in the repository, its global id and its pages."""

    model_config = ConfigDict(frozen=True)

    number: int
    id: int
    html_url: str
    url: str


class GitHubCommentCreated(BaseModel):
    """The comment GitHub added."""

    model_config = ConfigDict(frozen=True)

    id: int
    html_url: str
    url: str
