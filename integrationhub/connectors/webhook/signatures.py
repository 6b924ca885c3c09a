"""HMAC signature schemes of webhook senders, and the replay key of each request."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

from integrationhub.errors import IntegrationHubError

__all__ = ["Scheme", "SignatureInvalid", "verify"]

Scheme = Literal["github", "slack"]


class SignatureInvalid(IntegrationHubError):
    code = "signature_invalid"


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _require(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise SignatureInvalid(f"missing {name} header")
    return value


def verify(
    scheme: Scheme,
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    max_age: float,
) -> str:
    """Raise SignatureInvalid unless the request is signed with ``secret``; return a key that
    is the same for a replay of this very request (``headers`` keys are lower case)."""
    if scheme == "github":
        given = _require(headers, "X-Hub-Signature-256")
        expected = "sha256=" + _hex_hmac(secret, body)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureInvalid("X-Hub-Signature-256 does not match the body")
        delivery = headers.get("x-github-delivery") or given
        return f"github:{delivery}"
    timestamp = _require(headers, "X-Slack-Request-Timestamp")
    given = _require(headers, "X-Slack-Signature")
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        raise SignatureInvalid("X-Slack-Request-Timestamp is not a number") from None
    if age > max_age:
        raise SignatureInvalid(f"X-Slack-Request-Timestamp is {age:.0f}s away from now")
    expected = "v0=" + _hex_hmac(secret, b"v0:" + timestamp.encode() + b":" + body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureInvalid("X-Slack-Signature does not match the body and timestamp")
    return f"slack:{given}"
