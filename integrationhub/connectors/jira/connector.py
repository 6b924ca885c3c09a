"""The Jira Cloud connector: declares the ``jira-issue`` and ``jira-comment`` actions."""

from __future__ import annotations

from typing import Any

import httpx

from integrationhub.connectors.base import BaseConnector, action
from integrationhub.connectors.jira.answers import CommentAnswer, CreatedIssueAnswer, read_answer
from integrationhub.connectors.jira.models import (
    CreateJiraComment,
    CreateJiraIssue,
    JiraCommentCreated,
    JiraCredential,
    JiraIssueCreated,
)
from integrationhub.core.http import transport_failure
from integrationhub.errors import PermanentError

__all__ = ["JiraConnector"]

_HEADERS = {"Accept": "application/json"}


class JiraConnector(BaseConnector[JiraCredential]):
    """Create issues and comments in Jira Cloud (REST API v3).

    Credential ``jira-cloud``: site, email, api_token."""

    name = "jira"
    # Atlassian publishes no fixed number for API-token traffic (it is governed by per-second
    # burst limits per tenant and endpoint); its rate-limiting guide works with a budget of
    # 10 calls a second. Jira's 429 with Retry-After holds the credential back beyond that.
    rate_limit = "10/second"

    @action("jira-issue", safe_to_repeat=False)
    async def create_issue(self, params: CreateJiraIssue) -> JiraIssueCreated:
        """Create an issue with summary, type, optional description (text or ADF), labels,
        priority and assignee; returns its id, key and URLs."""
        site = self._site()
        path = "/rest/api/3/issue"
        response = await self._post(site, path, params.payload())
        answer = read_answer(
            response,
            CreatedIssueAnswer,
            what=f"Jira POST {path}",
            subject=f"project {params.project}",
        )
        return JiraIssueCreated(
            id=answer.id,
            key=answer.key,
            url=answer.self_url,
            browse_url=None if _gateway(site) else f"{site}/browse/{answer.key}",
        )

    @action("jira-comment", safe_to_repeat=False)
    async def create_comment(self, params: CreateJiraComment) -> JiraCommentCreated:
        """Comment on an issue with text (sent as ADF) or an ADF document; returns the
        comment's id and URL."""
        site = self._site()
        path = f"/rest/api/3/issue/{params.issue}/comment"
        response = await self._post(site, path, params.payload())
        answer = read_answer(
            response, CommentAnswer, what=f"Jira POST {path}", subject=f"issue {params.issue}"
        )
        return JiraCommentCreated(id=answer.id, issue=params.issue, url=answer.self_url)

    def _site(self) -> str:
        if not isinstance(self.credential, JiraCredential):
            raise PermanentError("the jira connector needs a jira-cloud credential")
        return self.credential.site

    async def _post(self, site: str, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return await self.http.post(
                f"{site}{path}", json=body, headers=_HEADERS, auth=self.auth
            )
        except httpx.TransportError as exc:
            # Jira may have created it before the answer was lost: the engine weighs that
            # against ``safe_to_repeat=False``, not us.
            raise transport_failure(f"Jira POST {path}", exc) from exc


def _gateway(site: str) -> bool:
    """Whether the site is Atlassian's API gateway (scoped tokens), which serves no pages."""
    return httpx.URL(site).host == "api.atlassian.com"
