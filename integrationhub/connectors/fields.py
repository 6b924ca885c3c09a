"""Checks on text fields that several connectors' inputs share.

Use them as ``Annotated[str, AfterValidator(one_line)]``: bad input fails in the model, before
any request, rather than as a vendor's 4xx after a retry budget is spent.
"""

from __future__ import annotations

__all__ = ["no_nul", "one_line"]


def no_nul(value: str) -> str:
    # JSON carries a NUL, but most vendors' databases refuse it, some by truncating silently.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def one_line(value: str) -> str:
    """A title, summary or label: no line break, no NUL."""
    if any(char in value for char in "\r\n\x00"):
        raise ValueError("must be one line, without NUL characters")
    return value
