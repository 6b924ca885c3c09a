"""The GitHub connector: declares the ``github-issue`` and ``github-comment`` actions."""

from __future__ import annotations

from typing import Any

import httpx

from integrationhub.connectors.base import BaseConnector, action
from integrationhub.connectors.github.answers import CommentAnswer, IssueAnswer, read_answer
from integrationhub.connectors.github.models import (
    CreateGitHubComment,
    CreateGitHubIssue,
    GitHubCommentCreated,
    GitHubCredential,
    GitHubIssueCreated,
)
from integrationhub.core.http import transport_failure
from integrationhub.errors import PermanentError

__all__ = ["API_VERSION", "GitHubConnector"]

API_VERSION = "2022-11-28"
_HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": API_VERSION,
    # GitHub refuses requests without a User-Agent; the shared client's default is not ours
    # to rely on.
    "User-Agent": "IntegrationHub",
}


class GitHubConnector(BaseConnector[GitHubCredential]):
    """Open issues and comment on them in GitHub (REST API 2022-11-28).

    Credential ``github-token``: token, api_url."""

    name = "github"
    # GitHub's secondary limit on content creation: "no more than 80 content-generating
    # requests per minute" (and 500 per hour) per user, well under the primary 5000 requests
    # an hour ("Rate limits for the REST API"). The hourly cap GitHub enforces with 403/429
    # answers, which hold the token back until the time GitHub names.
    rate_limit = "80/minute"

    @action("github-issue", safe_to_repeat=False)
    async def create_issue(self, params: CreateGitHubIssue) -> GitHubIssueCreated:
        """Open an issue in a repository, with optional body, assignees, labels and
        milestone; returns its number, id and web page."""
        path = f"/repos/{params.owner}/{params.repo}/issues"
        response = await self._post(path, params.payload())
        answer = read_answer(
            response,
            IssueAnswer,
            what=f"GitHub POST {path}",
            subject=f"repository {params.owner}/{params.repo}",
        )
        return GitHubIssueCreated(
            number=answer.number, id=answer.id, html_url=answer.html_url, url=answer.url
        )

    @action("github-comment", safe_to_repeat=False)
    async def create_comment(self, params: CreateGitHubComment) -> GitHubCommentCreated:
        """Comment on an issue or pull request; returns the comment's id and web page."""
        path = f"/repos/{params.owner}/{params.repo}/issues/{params.issue_number}/comments"
        response = await self._post(path, {"body": params.body})
        answer = read_answer(
            response,
            CommentAnswer,
            what=f"GitHub POST {path}",
            subject=f"issue {params.owner}/{params.repo}#{params.issue_number}",
        )
        return GitHubCommentCreated(id=answer.id, html_url=answer.html_url, url=answer.url)

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        credential = self.credential
        if not isinstance(credential, GitHubCredential):
            raise PermanentError("the github connector needs a github-token credential")
        try:
            return await self.http.post(
                f"{credential.api_url}{path}", json=body, headers=_HEADERS, auth=self.auth
            )
        except httpx.TransportError as exc:
            # The issue may exist already if only the answer was lost: the engine weighs that
            # against ``safe_to_repeat=False``, not us.
            raise transport_failure(f"GitHub POST {path}", exc) from exc
