"""GitHub: open issues and comment on issues or pull requests (REST API, version 2022-11-28;
GitHub.com and GitHub Enterprise Server).

Setup
-----
1. Create a token for the account the hub acts as (a machine user or a bot account keeps the
   hub's issues apart from a person's):

   - *fine-grained personal access token* (recommended): GitHub → Settings → Developer
     settings → Personal access tokens → Fine-grained tokens. Choose the resource owner and
     the repositories; under *Repository permissions* give **Issues: Read and write**
     (Metadata: read is added by itself). Organisations may have to approve the token.
   - *classic token*: the **repo** scope (``public_repo`` for public repositories only).
   - a GitHub App's installation token (permission Issues: write) is accepted too, but it
     expires after an hour and the hub does not mint new ones.

   Assignees, labels and milestones are set only when the token has push access; GitHub
   silently drops them otherwise.
2. Store the credential in the hub::

       PUT /api/v1/credentials/github-bot
       {"type": "github-token", "data": {"token": "github_pat_..."}}

   For GitHub Enterprise Server add ``"api_url": "https://HOST/api/v3"``.

Quirks (docs.github.com/en/rest/issues, API version 2022-11-28)
----------------------------------------------------------------
- Every request sends ``Accept: application/vnd.github+json``, ``X-GitHub-Api-Version:
  2022-11-28`` and a ``User-Agent`` (GitHub refuses requests without one) and the token as
  ``Authorization: Bearer``.
- Rate limits arrive as a 403 or a 429: ``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``
  (Unix time) for the primary limit; ``retry-after``, or only a message, for the secondary
  ones (80 content-creating requests a minute, 500 an hour). All are ``RateLimited``; any other
  403 is a permission problem.
- GitHub answers 404, not 403, for a private repository the token may not see; 410 when the
  repository has issues disabled; 422 ``Validation Failed`` with the failed fields listed in
  ``errors`` (an unknown assignee or milestone), which the error message summarises.
- Labels the repository lacks are created on the fly, not refused.
- A renamed repository answers with a redirect, which the hub does not follow for a POST: the
  step fails naming the new location.
- Creating is not idempotent (no idempotency key): both actions are not safe to repeat.
- Error texts are GitHub's, one line and bounded; anything shaped like a token or an
  ``Authorization`` value is redacted before it reaches a message.
"""

from __future__ import annotations

from integrationhub.connectors.github.answers import read_answer
from integrationhub.connectors.github.connector import API_VERSION, GitHubConnector
from integrationhub.connectors.github.models import (
    DEFAULT_API_URL,
    CreateGitHubComment,
    CreateGitHubIssue,
    GitHubCommentCreated,
    GitHubCredential,
    GitHubIssueCreated,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_API_URL",
    "CreateGitHubComment",
    "CreateGitHubIssue",
    "GitHubCommentCreated",
    "GitHubConnector",
    "GitHubCredential",
    "GitHubIssueCreated",
    "read_answer",
]
