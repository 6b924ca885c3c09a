"""The base URL of a vendor credential: refused when stored, not when a request is built."""

from __future__ import annotations

import pytest

from integrationhub.connectors.sites import site_url

check = site_url(example="https://example.atlassian.net", use="email and api_token")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://example.atlassian.net/", "https://example.atlassian.net"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_a_good_url_is_kept_without_its_trailing_slash(given, kept):
    assert check(given) == kept


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("example.atlassian.net", r"http\(s\) URL"),
        ("ftp://example.atlassian.net", r"http\(s\) URL"),
        ("https://example.atlassian.net:abc", r"http\(s\) URL"),
        ("https://exa mple.atlassian.net", r"http\(s\) URL"),
        ("https://user:secret@example.atlassian.net", "must not carry credentials"),
        ("https://example.atlassian.net/?token=x", "query or fragment"),
    ],
)
def test_a_url_a_request_could_not_use_is_refused(given, reason):
    with pytest.raises(ValueError, match=reason):
        check(given)
