"""A subset of the Atlassian Document Format's JSON schema, as OpenAPI 3.0 schema objects.

Jira's OpenAPI description says that an issue's ``description`` and a comment's ``body`` are
ADF, but types them ``{}``; the ADF JSON schema (http://go.atlassian.com/adf-json-schema,
``@atlaskit/adf-schema``'s ``json-schema/v1/full.json``) is what says what a document is. This
is the part of it a hub sends or tests give, written from that schema and
https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/: the document,
paragraphs, headings, lists, code blocks, block quotes, rules; text with its marks, hard
breaks, mentions, emoji. A node outside it is refused, as Jira refuses an invalid document.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ADF_SCHEMAS"]

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _node(
    kind: str,
    *,
    content: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
    min_items: int = 0,
) -> dict[str, Any]:
    """A node: ``type`` fixed, optional ``content`` of the given items, ``attrs``, ``marks``."""
    properties: dict[str, Any] = {
        "type": {"type": "string", "enum": [kind]},
        "marks": {"type": "array", "items": _ref("AdfMark")},
    }
    required = ["type"]
    if content is not None:
        properties["content"] = {"type": "array", "items": content, "minItems": min_items}
    if attrs is not None:
        properties["attrs"] = attrs
        if attrs.get("required"):
            required.append("attrs")
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


def _attrs(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_LOCAL_ID = {"localId": {"type": "string"}}
_INLINE = _ref("AdfInline")
_LIST_ITEM_CONTENT = {
    "anyOf": [_ref(n) for n in ("AdfParagraph", "AdfBulletList", "AdfOrderedList", "AdfCodeBlock")]
}

ADF_SCHEMAS: dict[str, dict[str, Any]] = {
    "AdfDocument": {
        "type": "object",
        "description": "An Atlassian Document Format document (doc_node).",
        "required": ["version", "type", "content"],
        "additionalProperties": False,
        "properties": {
            "version": {"type": "integer", "enum": [1]},
            "type": {"type": "string", "enum": ["doc"]},
            "content": {"type": "array", "items": _ref("AdfBlock")},
        },
    },
    "AdfBlock": {
        "anyOf": [
            _ref(n)
            for n in (
                "AdfParagraph",
                "AdfHeading",
                "AdfBulletList",
                "AdfOrderedList",
                "AdfCodeBlock",
                "AdfBlockquote",
                "AdfRule",
            )
        ]
    },
    "AdfParagraph": _node("paragraph", content=_INLINE, attrs=_attrs(**_LOCAL_ID)),
    "AdfHeading": _node(
        "heading",
        content=_INLINE,
        attrs=_attrs(["level"], level={"type": "integer", "minimum": 1, "maximum": 6}),
    ),
    "AdfBulletList": _node("bulletList", content=_ref("AdfListItem"), min_items=1),
    "AdfOrderedList": _node(
        "orderedList",
        content=_ref("AdfListItem"),
        min_items=1,
        attrs=_attrs(order={"type": "integer", "minimum": 0}),
    ),
    "AdfListItem": _node("listItem", content=_LIST_ITEM_CONTENT, min_items=1),
    "AdfCodeBlock": _node(
        "codeBlock", content=_ref("AdfText"), attrs=_attrs(language={"type": "string"})
    ),
    "AdfBlockquote": _node(
        "blockquote",
        content={"anyOf": [_ref("AdfParagraph"), _ref("AdfBulletList"), _ref("AdfOrderedList")]},
        min_items=1,
    ),
    "AdfRule": _node("rule"),
    "AdfInline": {
        "anyOf": [_ref(n) for n in ("AdfText", "AdfHardBreak", "AdfMention", "AdfEmoji")]
    },
    "AdfText": {
        "type": "object",
        "required": ["type", "text"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": ["text"]},
            "text": {"type": "string", "minLength": 1},
            "marks": {"type": "array", "items": _ref("AdfMark")},
        },
    },
    "AdfHardBreak": _node("hardBreak", attrs=_attrs(text={"type": "string", "enum": ["\n"]})),
    "AdfMention": _node("mention", attrs=_attrs(["id"], id={"type": "string"}, text={})),
    "AdfEmoji": _node("emoji", attrs=_attrs(["shortName"], shortName={"type": "string"})),
    "AdfMark": {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {
            "type": {
                "type": "string",
                "enum": [
                    "strong",
                    "em",
                    "code",
                    "strike",
                    "underline",
                    "link",
                    "subsup",
                    "textColor",
                ],
            },
            "attrs": {"type": "object"},
        },
    },
}
