"""Where the client finds the hub and its key when the caller does not say."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_URL", "KEY_FILE", "resolve_api_key", "resolve_url"]

DEFAULT_URL = "http://127.0.0.1:8000"
# The key a hub started in this directory creates on first start (its default data dir).
KEY_FILE = Path(".integrationhub") / "api-key"


def resolve_url(url: str | None) -> str:
    """``url``, else ``INTEGRATIONHUB_URL``, else the hub's default address."""
    return (url or os.environ.get("INTEGRATIONHUB_URL") or DEFAULT_URL).rstrip("/")


def resolve_api_key(api_key: str | None) -> str | None:
    """``api_key``, else ``INTEGRATIONHUB_API_KEY``, else ``.integrationhub/api-key`` if it
    exists here; None when there is none (the hub will answer 401)."""
    if api_key:
        return api_key
    if key := os.environ.get("INTEGRATIONHUB_API_KEY"):
        return key
    try:
        return KEY_FILE.read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def http_options(url: str | None, api_key: str | None, timeout: float) -> dict[str, object]:
    """Keyword arguments for ``httpx.Client`` and ``httpx.AsyncClient`` alike."""
    headers = {"User-Agent": "integrationhub-client/0.1.0", "Accept": "application/json"}
    if key := resolve_api_key(api_key):
        headers["Authorization"] = f"Bearer {key}"
    return {"base_url": resolve_url(url), "headers": headers, "timeout": timeout}
