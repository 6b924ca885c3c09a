"""Jira Cloud: create issues and comment on them (REST API v3).

Setup
-----
1. Sign in to Atlassian as the account the hub acts as (a dedicated account keeps the hub's
   issues apart from a person's) and create an **API token** at
   https://id.atlassian.com/manage-profile/security/api-tokens (*Create API token*; pick an
   expiry, at most a year). A token *with scopes* needs ``write:jira-work`` (or the granular
   ``write:issue:jira`` and ``write:comment:jira``) and works only through Atlassian's
   gateway: its ``site`` is ``https://api.atlassian.com/ex/jira/{cloudId}``, and results then
   have no ``browse_url`` (the gateway has no pages).
2. In each project, the account needs *Browse projects* and *Create issues* (and *Add
   comments* to comment); assigning needs *Assign issues*, and the assignee *Assignable user*.
3. Store the credential in the hub::

       PUT /api/v1/credentials/jira-bot
       {"type": "jira-cloud", "data": {"site": "https://your-domain.atlassian.net",
                                       "email": "hub-bot@example.com", "api_token": "..."}}

Quirks (checked against ``shared/specs/swagger-v3.v3.json``, operations ``createIssue`` and
``addComment``)
--------------------------------------------------------------------------------------------
- Auth is HTTP Basic with the account's *email* as user name and the *API token* as password.
- v3 takes rich text only as Atlassian Document Format: a plain-text description or comment
  is converted (paragraphs at blank lines, ``hardBreak`` at newlines); an ADF document is
  sent as given after a check of its frame. The spec types these fields loosely, so Jira, not
  the spec, is the final judge of an ADF document.
- The issue type, priority and project are given by name or key (``{"name": "Bug"}``,
  ``{"key": "OPS"}``); the assignee only by account id (GDPR: Jira Cloud has no user names).
- Errors are ``{"errorMessages": [...], "errors": {field: message}}`` and are summarised in
  the message; an unknown field or type is a 400, not a 404. A 404 on a comment means the
  issue is missing or hidden from the account.
- Rate limits: 429 with ``Retry-After`` (seconds) and ``X-RateLimit-Reset`` as an ISO 8601
  timestamp, not Unix seconds; ``RateLimit-Reason`` says which limit (burst, per-issue write,
  quota). Both ``RateLimited``.
- Creating is not idempotent: both actions are not safe to repeat.
- Error texts are Jira's, one line and bounded; anything shaped like an API token or an
  ``Authorization`` value is redacted before it reaches a message.
"""

from __future__ import annotations

from integrationhub.connectors.jira.adf import check_adf, text_to_adf
from integrationhub.connectors.jira.answers import read_answer
from integrationhub.connectors.jira.connector import JiraConnector
from integrationhub.connectors.jira.models import (
    CreateJiraComment,
    CreateJiraIssue,
    JiraCommentCreated,
    JiraCredential,
    JiraIssueCreated,
)

__all__ = [
    "CreateJiraComment",
    "CreateJiraIssue",
    "JiraCommentCreated",
    "JiraConnector",
    "JiraCredential",
    "JiraIssueCreated",
    "check_adf",
    "read_answer",
    "text_to_adf",
]
