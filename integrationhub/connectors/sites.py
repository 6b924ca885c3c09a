"""The base URL a credential names for its vendor's API (``site``, ``api_url``).

It is checked where the credential is read, so that a URL that would leak or be misread fails
before any request: user info would ride along in every request beside the real credential,
and a query or fragment would be mangled when paths are appended to the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

__all__ = ["site_url"]


def site_url(*, example: str, use: str) -> Callable[[str], str]:
    """A validator for ``AfterValidator``: an http(s) URL with a host and without user info,
    query or fragment, returned without its trailing slash. ``example`` shows a good URL in
    the error, ``use`` names the credential's fields that hold what user info would."""

    def check(value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as {example}")
        try:
            httpx.URL(value.strip()).port  # noqa: B018 - a port that is no number raises
        except (httpx.InvalidURL, ValueError):
            raise ValueError(f"must be an http(s) URL such as {example}") from None
        if any(char.isspace() for char in parts.netloc):
            raise ValueError(f"must be an http(s) URL such as {example}")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"must not carry credentials; use {use}")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")

    return check
