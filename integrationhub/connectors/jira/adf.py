"""Atlassian Document Format (ADF), the rich text of Jira Cloud's REST API v3.

v3 takes an issue's description and a comment's body only as an ADF document
(https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/)::

    {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": "Order entry fails"}]}]}

Plain text becomes paragraphs (split at blank lines) whose lines are joined by ``hardBreak``
nodes: ADF has no newline inside a text node, and refuses empty text nodes. A document given
as ADF is passed on as it is, after a check of its frame (doc, version 1, nodes with a type,
no empty text) so that a mistake fails before the request; Jira validates the rest.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_DEPTH", "check_adf", "text_to_adf"]

MAX_DEPTH = 30  # deeper than any document Jira's editor makes
_PARAGRAPH_BREAK = re.compile(r"\n(?:[ \t]*\n)+")


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: a paragraph per block, a ``hardBreak`` per newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    content = []
    for block in _PARAGRAPH_BREAK.split(text):
        inline: list[dict[str, Any]] = []
        for number, line in enumerate(block.split("\n")):
            if number:
                inline.append({"type": "hardBreak"})
            if line:
                inline.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": 1, "content": content}


def check_adf(document: Any) -> dict[str, Any]:
    """``document`` when its frame is ADF, else ``ValueError`` saying where it is not."""
    if not isinstance(document, dict):
        raise ValueError("must be text or an ADF document (a JSON object)")
    if document.get("type") != "doc" or document.get("version") != 1:
        raise ValueError('an ADF document has "type": "doc" and "version": 1')
    _check_content(document, "doc", depth=0)
    return document


def _check_content(node: dict[str, Any], where: str, *, depth: int) -> None:
    content = node.get("content")
    if content is None and node.get("type") != "doc":
        return
    if not isinstance(content, list):
        raise ValueError(f"{where}.content must be a list of nodes")
    if depth >= MAX_DEPTH:
        raise ValueError(f"{where} nests deeper than {MAX_DEPTH} levels")
    for index, child in enumerate(content):
        here = f"{where}.content[{index}]"
        if not isinstance(child, dict) or not isinstance(child.get("type"), str):
            raise ValueError(f"{here} must be a node: an object with a type")
        if child["type"] == "text" and (
            not isinstance(child.get("text"), str) or not child["text"]
        ):
            raise ValueError(f"{here} is a text node without text (ADF refuses empty text)")
        _check_content(child, here, depth=depth + 1)
