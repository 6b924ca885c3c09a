"""JSONata expressions in flows: a step's ``when`` and ``for_each``, and any input value written
``{"$jsonata": "<expression>"}``.

An expression reads the run context (``parameters``, ``steps``, ``run``; inside ``for_each`` also
``item`` and ``index``) both as its input (``parameters.to``) and as variables
(``$parameters.to``, which still works inside a predicate, where the input has moved on).

Expressions come from flow authors but the data they read comes from callers, so every
evaluation is bounded, checked at each node the interpreter evaluates: its time
(``TIME_LIMIT``), its nesting (``MAX_DEPTH``, which also keeps Python's stack safe), the size of
every string, array and object it builds, and the size of its result (``MAX_RESULT``, about
characters of JSON). Built-in functions that could build a large value or take long in a single
call (``$pad``, ``$join``, ``$string`` and ``&``, ``$replace``, ``$distinct``, ``$eval``) are
replaced by guarded versions, and regular expressions run on RE2, in time linear in their input,
so no caller's string can make one backtrack for hours. A bound cannot stop one built-in call
halfway; each call works on values that are bounded already.

Expressions are parsed once per source and cached: the same flow evaluates the same expressions
on every run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from integrationhub.core import templates
from integrationhub.errors import ExpressionError

if TYPE_CHECKING:
    from integrationhub.core.jsonata_runtime import Expression

__all__ = [
    "KEY",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_RESULT",
    "MAX_SOURCE",
    "MAX_STRING",
    "TIME_LIMIT",
    "check",
    "expressions_in",
    "is_expression",
    "parse",
    "render",
    "shown",
    "truthy",
]

KEY = "$jsonata"
TIME_LIMIT = 0.25  # seconds of one evaluation; the engine's event loop waits meanwhile
MAX_DEPTH = 100  # nested evaluations (about four Python frames each)
MAX_STRING = 1_000_000  # characters of any string an expression builds
MAX_ITEMS = 100_000  # entries of any array or object an expression builds
MAX_RESULT = 1_000_000  # about characters of the result as JSON
MAX_SOURCE = 20_000  # characters of an expression's text, and of a string given to $eval
_MAX_NUMBER_BITS = 1024  # beyond a double's range, and costly to compute with
_MAX_NESTING = 100  # levels of arrays and objects in a result

Loc = tuple[str | int, ...]


@functools.cache
def _runtime() -> ModuleType:
    from integrationhub.core import jsonata_runtime

    return jsonata_runtime


def shown(source: str) -> str:
    return repr(source if len(source) <= 80 else source[:80] + "…")


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> Expression:
    """Parse once (cached by source); raise ExpressionError when it does not parse."""
    if len(source) > MAX_SOURCE:
        raise ExpressionError(
            f"JSONata expression {shown(source)} is longer than {MAX_SOURCE:,} characters"
        )
    if not source.strip():
        raise ExpressionError("JSONata expression is empty")
    return _runtime().compile_expression(source)  # type: ignore[no-any-return]


def truthy(value: Any) -> bool:
    """JSONata's ``$boolean``: false for null, false, 0, "", and empty arrays and objects."""
    return _runtime().truthy(value)  # type: ignore[no-any-return]


def is_expression(value: Any) -> bool:
    return isinstance(value, Mapping) and KEY in value


def _source(node: Mapping[str, Any]) -> str:
    source = node[KEY]
    if len(node) != 1 or not isinstance(source, str):
        raise ExpressionError(f"{KEY} must be the only key of its object, its value a string")
    return source


def expressions_in(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    """Each ``{"$jsonata": ...}`` object in ``value``, with where it is."""
    if isinstance(value, Mapping):
        if KEY in value:
            yield loc, value
            return
        for key, item in value.items():
            yield from expressions_in(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from expressions_in(item, (*loc, index))


def check(value: Any, loc: Loc = ()) -> None:
    """Parse every expression and compile every template in ``value``; raise ExpressionError
    or TemplateError, naming where, on the first that is broken."""
    if isinstance(value, str):
        templates.check(value)
    elif is_expression(value):
        try:
            parse(_source(value))
        except ExpressionError as exc:
            raise ExpressionError(_at(loc, exc.message)) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check(item, (*loc, index))


def render(value: Any, context: Mapping[str, Any], loc: Loc = ()) -> Any:
    """``value`` with each expression replaced by its result and each template rendered
    (recursing into objects and arrays), against ``context``."""
    if isinstance(value, str):
        return templates.render(value, context)
    if isinstance(value, Mapping):
        if KEY in value:
            try:
                return parse(_source(value)).evaluate(context)
            except ExpressionError as exc:
                raise ExpressionError(_at(loc, exc.message)) from None
        return {key: render(item, context, (*loc, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context, (*loc, index)) for index, item in enumerate(value)]
    return value


def _at(loc: Loc, message: str) -> str:
    return f"{'.'.join(map(str, loc))}: {message}" if loc else message
