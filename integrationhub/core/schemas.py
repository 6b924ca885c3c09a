"""Parameters against a flow's JSON Schema (Draft 2020-12, formats checked): for triggers, and
for a schedule's fixed parameters when the flow is loaded."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

__all__ = ["first_error"]

_MAX_MESSAGE = 300


def first_error(schema: dict[str, Any], instance: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Where and why ``instance`` breaks ``schema`` (the most relevant error), or None."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return None
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "…"
    return tuple(error.absolute_path), message


@functools.lru_cache(maxsize=512)
def _validator(schema: str) -> jsonschema.Draft202012Validator:
    # Built once per schema: every trigger of a flow checks against the same one.
    return jsonschema.Draft202012Validator(
        json.loads(schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
