"""What reading a remote answer has in common across connectors, so that each connector's
``answers.py`` keeps only its vendor's quirks: the shape of its error bodies, how it signals a
rate limit, and what each status means there.

A connector declares one ``AnswerReader`` and hands it the answers its own checks let through;
``AnswerReader.read`` classifies the rest:

- 5xx and ``RETRYABLE_STATUS`` → ``RetryableError``, waiting what ``Retry-After`` asks;
- a redirect → ``PermanentError`` naming the ``Location`` (the shared client follows none);
- 404 → ``PermanentError``: the thing is missing, or hidden from the credential;
- any other 4xx → ``PermanentError`` with the vendor's hint for the status;
- else the typed answer, or ``PermanentError`` when the body is not what the vendor sends.

Every text quoted from the remote side is bounded, on one line and redacted: an echoing or
hostile server may quote the credential back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from integrationhub.core.http import RETRYABLE_STATUS, answered_failure, one_line, retry_after
from integrationhub.errors import PermanentError, RateLimited

__all__ = ["AnswerReader", "json_or_none"]

MAX_TEXT = 300
# An Authorization value quoted back. The digit it must contain spares prose ("token expired").
_AUTH_VALUE = r"\b(?:bearer|basic|token)\s+(?=[\w.~+/=-]*\d)[\w.~+/=-]{8,}"

Model = TypeVar("Model", bound=BaseModel)


def json_or_none(response: httpx.Response) -> Any:
    """The body as JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class AnswerReader:
    """How one vendor's answers read. ``vendor`` names it in messages (``"GitHub"``);
    ``tokens`` is a pattern of its credentials' own shapes (``ghp_…``), redacted like any
    ``Authorization`` value; ``hints`` say what a 4xx status means there; ``redirect_hint``
    what a redirect suggests is wrong; ``hidden`` why a 404 may be about something that exists
    (``"the account cannot see it"``)."""

    vendor: str
    tokens: str
    hints: Mapping[int, str]
    redirect_hint: str
    hidden: str

    @cached_property
    def _secrets(self) -> re.Pattern[str]:
        return re.compile(f"(?i){_AUTH_VALUE}|{self.tokens}")

    def clean(self, text: str) -> str:
        """One line, secrets redacted; long enough to bound after, short enough to scan."""
        return self._secrets.sub("[redacted]", " ".join(str(text)[: 8 * MAX_TEXT].split()))

    def excerpt(self, response: httpx.Response) -> str:
        """A bounded, redacted excerpt of the body, for an answer that is not the vendor's."""
        text = self.clean(response.text)
        return one_line(text, MAX_TEXT) if text else "an empty body"

    def read(
        self,
        response: httpx.Response,
        model: type[Model],
        *,
        body: Any,
        said: str,
        what: str,
        subject: str,
    ) -> Model:
        """The typed success answer, or raise what the answer means for the engine.

        ``body`` is the answer as JSON (None if it is not), ``said`` the vendor's error in a
        few words, ``what`` names the call (``"Jira POST /rest/api/3/issue"``) and ``subject``
        what it was about (``"issue OPS-12"``) for a 404's message.
        """
        status = response.status_code
        if status == 429:
            raise RateLimited(f"{what} answered 429: {said}", retry_after=retry_after(response))
        if status >= 500 or status in RETRYABLE_STATUS:
            raise answered_failure(f"{what} answered {status}: {said}", response)
        if 300 <= status < 400:
            location = self.clean(response.headers.get("Location", "?"))
            raise PermanentError(
                f"{what} answered {status}, a redirect to {location}: {self.redirect_hint}"
            )
        if status == 404:
            raise PermanentError(
                f"{what} answered 404: {subject} does not exist, or {self.hidden}: {said}"
            )
        if status >= 400:
            hint = self.hints.get(status, f"{self.vendor} refused the request")
            raise PermanentError(f"{what} answered {status}: {hint}: {said}")
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise PermanentError(
                f"{what} answered {status} with a body that is not what {self.vendor} sends "
                f"({self.clean(kind)[:60]})"
            ) from exc
