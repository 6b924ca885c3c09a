"""Sandboxed templates for step inputs (Jinja2's immutable sandbox).

A string that is exactly one expression (``"{{ parameters.to }}"``) renders to the value itself,
keeping its type (a list stays a list); any other string renders to text. Compiled templates are
cached by source, since the same flow renders the same strings on every run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from integrationhub.errors import TemplateError

__all__ = ["check", "render"]

MAX_SEQUENCE = 1_000_000  # the largest string or list a template may build with * or **
_SINGLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}$", re.DOTALL)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also bounding what ``*`` and ``**`` may build, so a template
    cannot exhaust memory with ``'a' * 10**10``."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_SEQUENCE:
                    raise SecurityError("result too large")
        return super().call_binop(context, operator, left, right)


_env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False)


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> Callable[[Mapping[str, Any]], Any]:
    try:
        match = _SINGLE_EXPRESSION.match(source.strip())
        if match:
            expression = _env.compile_expression(match["expr"], undefined_to_none=False)
            return lambda ctx: expression(**ctx)
        template = _env.from_string(source)
        return template.render
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {source!r} is invalid: {exc.message}") from exc


def check(value: Any) -> None:
    """Compile every template in ``value``; raise TemplateError on the first broken one."""
    if isinstance(value, str):
        if "{" in value:
            _compile(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            check(item)
    elif isinstance(value, list):
        for item in value:
            check(item)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string in ``value`` (recursing into dicts and lists) against ``context``."""
    if isinstance(value, str):
        if "{" not in value:
            return value
        try:
            result = _compile(value)(context)
        except SecurityError as exc:
            raise TemplateError(f"template {value!r} was refused by the sandbox: {exc}") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {value!r} failed: {exc.message}") from exc
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateError(f"template {value!r} failed: {exc}") from exc
        if isinstance(result, jinja2.Undefined):
            raise TemplateError(f"template {value!r} is undefined")
        return result
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context) for item in value]
    return value
