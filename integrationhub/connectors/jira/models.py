"""What the Jira connector takes and gives: the credential, the actions' inputs and outputs.

The limits are Jira's own (a summary of one line under 255 characters, labels without spaces,
a text field of 32767 characters), so bad input fails here, before any request, instead of as
a 400 after a retry budget is spent. The issue key becomes a path segment: its pattern leaves
no room for ``/``, ``?`` or ``#``.
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

from integrationhub.connectors.auth import AuthScheme, BasicAuth
from integrationhub.connectors.base import Credential
from integrationhub.connectors.fields import no_nul, one_line
from integrationhub.connectors.jira.adf import check_adf, text_to_adf
from integrationhub.connectors.sites import site_url

__all__ = [
    "CreateJiraComment",
    "CreateJiraIssue",
    "JiraCommentCreated",
    "JiraCredential",
    "JiraIssueCreated",
]

MAX_SUMMARY_LENGTH = 254  # "Summary must be less than 255 characters."
MAX_TEXT_LENGTH = 32_767  # Jira's limit for a text field: description, comment
MAX_LABEL_LENGTH = 255


def _rich_text(value: object) -> object:
    """Text as it is (checked below), or an ADF document whose frame is checked here."""
    if isinstance(value, str):
        no_nul(value)
        if len(value) > MAX_TEXT_LENGTH:
            raise ValueError(f"must be at most {MAX_TEXT_LENGTH} characters")
        return value
    return check_adf(value)


def adf(value: str | dict[str, Any]) -> dict[str, Any]:
    return text_to_adf(value) if isinstance(value, str) else value


Site = Annotated[
    str,
    AfterValidator(
        site_url(example="https://your-domain.atlassian.net", use="email and api_token")
    ),
]
ProjectKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=255, pattern=r"^[A-Z][A-Z0-9_]+$"),
]
IssueKey = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=255, pattern=r"^([A-Z][A-Z0-9_]+-)?[1-9][0-9]*$"
    ),
]
Summary = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SUMMARY_LENGTH),
    AfterValidator(one_line),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(one_line),
]
Label = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_LABEL_LENGTH, pattern=r"^\S+$"
    ),
]
AccountId = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=128, pattern=r"^[A-Za-z0-9:_-]+$")
]
RichText = Annotated[str | dict[str, Any], BeforeValidator(_rich_text)]


class JiraCredential(Credential):
    """A Jira Cloud site and an Atlassian account's email and API token."""

    type: ClassVar[str] = "jira-cloud"
    auth: ClassVar[AuthScheme] = BasicAuth("email", "api_token")

    site: Site = Field(description="URL of the site, e.g. https://your-domain.atlassian.net")
    email: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s:]+@[^@\s]+$")
    ] = Field(description="the Atlassian account's email")
    api_token: SecretStr = Field(min_length=1)


class CreateJiraIssue(BaseModel):
    """Create an issue in a project: summary, issue type by name, and optionally a description
    (plain text, or an ADF document), labels, priority by name and assignee by account id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: ProjectKey = Field(description="the project's key, e.g. OPS")
    summary: Summary
    issue_type: Name = Field(description='the issue type\'s name, e.g. "Task" or "Bug"')
    description: RichText | None = Field(
        None, description="plain text (becomes ADF paragraphs) or an ADF document"
    )
    labels: list[Label] = Field(default_factory=list, max_length=100)
    priority: Name | None = Field(None, description='the priority\'s name, e.g. "High"')
    assignee: AccountId | None = Field(None, description="the assignee's Atlassian account id")

    def payload(self) -> dict[str, Any]:
        """The JSON body of ``POST /rest/api/3/issue``: only what was given."""
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "summary": self.summary,
            "issuetype": {"name": self.issue_type},
        }
        if self.description is not None and (
            not isinstance(self.description, str) or self.description.strip()
        ):
            fields["description"] = adf(self.description)
        if self.labels:
            fields["labels"] = self.labels
        if self.priority is not None:
            fields["priority"] = {"name": self.priority}
        if self.assignee is not None:
            fields["assignee"] = {"id": self.assignee}
        return {"fields": fields}


def _not_blank(value: object) -> object:
    # Jira refuses an empty comment: "Comment body can not be empty!"
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty or only whitespace")
    if isinstance(value, dict) and not value.get("content"):
        raise ValueError("must not be an empty ADF document")
    return value


class CreateJiraComment(BaseModel):
    """Comment on an issue, given by key (OPS-12) or id, with plain text or an ADF document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issue: IssueKey = Field(description="the issue's key, e.g. OPS-12, or its id")
    body: Annotated[RichText, AfterValidator(_not_blank)] = Field(
        description="plain text (becomes ADF paragraphs) or an ADF document"
    )

    def payload(self) -> dict[str, Any]:
        """The JSON body of ``POST /rest/api/3/issue/{issueIdOrKey}/comment``."""
        return {"body": adf(self.body)}


class JiraIssueCreated(BaseModel):
    """The issue Jira created: its id, key, REST URL and the page people open."""

    model_config = ConfigDict(frozen=True)

    id: str
    key: str
    url: str = Field(description="the issue's REST URL (Jira's self)")
    browse_url: str | None = Field(
        description="the issue's page, SITE/browse/KEY; none through Atlassian's API gateway"
    )


class JiraCommentCreated(BaseModel):
    """The comment Jira added."""

    model_config = ConfigDict(frozen=True)

    id: str
    issue: str
    url: str = Field(description="the comment's REST URL (Jira's self)")
