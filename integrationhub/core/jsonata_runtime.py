"""The JSONata interpreter behind ``core/expressions.py``, with its bounds and guarded built-ins.

Imported on the first expression a flow uses, not before: the interpreter and RE2 weigh about
7 MB, which a hub whose flows use no expression does not carry.
"""

from __future__ import annotations

import copy
import math
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import re2

from integrationhub.core.expressions import (
    _MAX_NESTING,
    _MAX_NUMBER_BITS,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_RESULT,
    MAX_SOURCE,
    MAX_STRING,
    TIME_LIMIT,
    shown,
)
from integrationhub.errors import ExpressionError

# jsonata raises the interpreter's recursion limit to 10,000 for the whole process on import;
# MAX_DEPTH keeps expressions well inside the limit the process already had.
_recursion_limit = sys.getrecursionlimit()
from jsonata import JException, Jsonata  # noqa: E402
from jsonata.functions import Functions  # noqa: E402
from jsonata.utils import Utils  # noqa: E402

sys.setrecursionlimit(_recursion_limit)

__all__ = ["Expression", "compile_expression", "truthy"]


class _Exceeded(Exception):
    """A bound was exceeded. The interpreter wraps some errors (``$eval``'s in D3121), so the
    reason is kept on the budget too."""


class _Budget:
    """What one evaluation may still spend; its methods are the interpreter's callbacks."""

    __slots__ = ("deadline", "depth", "exceeded")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + TIME_LIMIT
        self.depth = 0
        self.exceeded: str | None = None

    def stop(self, reason: str) -> NoReturn:
        if self.exceeded is None:
            self.exceeded = reason
        raise _Exceeded(self.exceeded)

    def tick(self) -> None:
        if self.exceeded is not None or time.monotonic() > self.deadline:
            self.stop(f"ran longer than {TIME_LIMIT:g}s")

    def enter(self, _expr: Any, _input: Any, env: Any) -> None:
        self.tick()
        if not env.is_parallel_call:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.stop(f"nested deeper than {MAX_DEPTH} levels")

    def exit(self, _expr: Any, _input: Any, env: Any, result: Any) -> None:
        if not env.is_parallel_call:
            self.depth -= 1
        kind = type(result)
        if kind is str:
            if len(result) > MAX_STRING:
                self.stop(f"built a string longer than {MAX_STRING:,} characters")
        elif kind is int:
            if result.bit_length() > _MAX_NUMBER_BITS:
                self.stop("built a number out of range")
        elif isinstance(result, list | dict) and len(result) > MAX_ITEMS:
            self.stop(f"built an array or object of more than {MAX_ITEMS:,} entries")


_current = threading.local()  # the budget of the evaluation under way, for the guarded built-ins


def _budget() -> _Budget:
    budget: _Budget | None = getattr(_current, "budget", None)
    return budget if budget is not None else _Budget()


def _json_size(value: Any, limit: int) -> int:
    """About the characters of ``value`` as JSON, counting no further than just past ``limit``
    (an array may hold the same large string many times over)."""
    size, stack = 0, [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, Mapping):
            size += 2 + sum(len(str(key)) + 4 for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 8
    return size


class _Guarded:
    """Built-ins that could build a large value, or run long, in one call: each checks what it
    would build first (the arguments are the originals', positionally)."""

    @staticmethod
    def pad(string: Any, width: Any, char: Any) -> Any:
        if isinstance(width, int | float) and abs(width) > MAX_STRING:
            _budget().stop(f"$pad to more than {MAX_STRING:,} characters")
        return Functions.pad(string, width, char)

    @staticmethod
    def join(strs: Any, separator: Any) -> Any:
        if isinstance(strs, list):
            size = sum(len(s) for s in strs if isinstance(s, str))
            size += len(separator or "") * max(len(strs) - 1, 0)
            if size > MAX_STRING:
                _budget().stop(f"$join to more than {MAX_STRING:,} characters")
        return Functions.join(strs, separator)

    @staticmethod
    def string(arg: Any, prettify: Any) -> Any:
        if not isinstance(arg, str) and _json_size(arg, MAX_STRING) > MAX_STRING:
            _budget().stop(f"$string of more than {MAX_STRING:,} characters")
        return Functions.string(arg, prettify)

    @staticmethod
    def replace(string: Any, pattern: Any, replacement: Any, limit: Any) -> Any:
        if isinstance(string, str) and isinstance(replacement, str) and pattern:
            if isinstance(pattern, str):
                count = string.count(pattern)
            elif callable(getattr(pattern, "finditer", None)):
                count = sum(1 for _ in pattern.finditer(string))
            else:
                count = 0  # a custom matcher function: its results are bounded as they come
            if isinstance(limit, int | float):
                count = min(count, max(int(limit), 0))
            # Matches do not overlap: each $n in the replacement repeats, over all matches
            # together, at most the whole string.
            size = len(string) + count * len(replacement)
            size += replacement.count("$") * len(string) if count else 0
            if size > MAX_STRING:
                _budget().stop(f"$replace to more than {MAX_STRING:,} characters")
        return Functions.replace(string, pattern, replacement, limit)

    @staticmethod
    def distinct(arr: Any) -> Any:
        # The original compares each item with every one kept (quadratic): a caller's array of
        # 20,000 strings took seconds. Equal hashable items are equal as JSONata means it.
        if not isinstance(arr, list) or len(arr) <= 1:
            return arr
        budget = _budget()
        result = Utils.create_sequence() if isinstance(arr, Utils.JList) else []
        seen: set[Any] = set()
        kept: list[Any] = []
        for position, item in enumerate(arr):
            if isinstance(item, list | dict):
                if position % 16 == 0:
                    budget.tick()
                if item in kept:
                    continue
                kept.append(item)
            else:
                if item in seen:
                    continue
                seen.add(item)
            result.append(item)
        return result

    @staticmethod
    def function_eval(expr: Any, focus: Any) -> Any:
        if isinstance(expr, str) and len(expr) > MAX_SOURCE:
            _budget().stop(f"$eval of more than {MAX_SOURCE:,} characters")
        return Functions.function_eval(expr, focus)


_GUARDED = {
    name: Jsonata.function(name, signature, _Guarded, method)
    for name, signature, method in [
        ("pad", "<s-ns?:s>", "pad"),
        ("join", "<a<s>s?:s>", "join"),
        ("string", "<x-b?:s>", "string"),
        ("replace", "<s-(sf)(sf)n?:s>", "replace"),
        ("distinct", "<x:x>", "distinct"),
        ("eval", "<sx?:x>", "function_eval"),
    ]
}


class _Interpreter(Jsonata):
    def evaluate_string_concat(self, lhs: Any, rhs: Any) -> str:
        size = sum(
            len(side) if isinstance(side, str) else _json_size(side, MAX_STRING)
            for side in (lhs, rhs)
            if side is not None
        )
        if size > MAX_STRING:
            _budget().stop(f"built a string longer than {MAX_STRING:,} characters")
        return super().evaluate_string_concat(lhs, rhs)


def _regex(pattern: str, flags: Any) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not flags.case_insensitive
    return re2.compile(f"(?m){pattern}" if flags.multiline else pattern, options)


def _reason(exc: BaseException) -> str:
    first = exc.args[0] if exc.args else None
    text = first.decode(errors="replace") if isinstance(first, bytes) else str(exc)
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """A parsed expression; evaluate it with ``evaluate``, as often as needed."""

    source: str
    _interpreter: _Interpreter

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The result, as plain JSON (an undefined result is None). Raises ExpressionError."""
        budget = _Budget()
        # A copy per evaluation: the interpreter keeps the input, scope and time of the
        # evaluation under way on the instance, and finds that instance through a thread-local.
        interpreter = copy.copy(self._interpreter)
        Jsonata.CURRENT.jsonata = interpreter
        _current.budget = budget
        bindings = {**context, "__evaluate_entry": budget.enter, "__evaluate_exit": budget.exit}
        try:
            result = interpreter.evaluate(context, bindings)
            if budget.exceeded is not None:  # a bound the interpreter caught on the way
                raise _Exceeded(budget.exceeded)
            return _to_json(result, budget)
        except _Exceeded as exc:
            raise ExpressionError(f"JSONata expression {self.shown} stopped: {exc}") from None
        except RecursionError:
            message = f"JSONata expression {self.shown} stopped: nested too deeply"
            raise ExpressionError(message) from None
        # The interpreter is third-party code running a flow's expression over a caller's data:
        # whatever it raises fails the step, never the worker.
        except Exception as exc:
            if budget.exceeded is not None:
                message = f"JSONata expression {self.shown} stopped: {budget.exceeded}"
            else:
                message = f"JSONata expression {self.shown} failed: {_reason(exc)}"
            raise ExpressionError(message) from exc
        finally:
            _current.budget = None

    @property
    def shown(self) -> str:
        return shown(self.source)


def _to_json(value: Any, budget: _Budget) -> Any:
    """The interpreter's result as plain JSON within MAX_RESULT: its sequences become lists,
    its null None; a function or regex is not data."""
    used = 0

    def convert(item: Any, level: int) -> Any:
        nonlocal used
        if level > _MAX_NESTING:
            budget.stop(f"result nested deeper than {_MAX_NESTING} levels")
        used += len(item) + 2 if isinstance(item, str) else 2
        if used > MAX_RESULT:
            budget.stop(f"result larger than {MAX_RESULT:,} characters")
        if item is None or item is Utils.NULL_VALUE:
            return None
        if isinstance(item, str | bool | int):
            return item
        if isinstance(item, float):
            if not math.isfinite(item):
                budget.stop("result is not a finite number")
            return item
        if isinstance(item, list):
            return [convert(element, level + 1) for element in item]
        if isinstance(item, dict):
            converted = {}
            for key, element in item.items():
                used += len(key)
                converted[key] = convert(element, level + 1)
            return converted
        raise TypeError(f"the result holds a {type(item).__name__}, which is not JSON data")

    return convert(value, 0)


def compile_expression(source: str) -> Expression:
    """Parse ``source``; raise ExpressionError when it does not parse."""
    try:
        interpreter = _Interpreter(source, _regex)
    except JException as exc:
        raise ExpressionError(
            f"JSONata expression {shown(source)} is invalid: {_reason(exc)} "
            f"(at character {exc.location})"
        ) from None
    except re2.error as exc:
        raise ExpressionError(
            f"JSONata expression {shown(source)} has an invalid regular expression: {_reason(exc)}"
        ) from None
    except RecursionError:
        raise ExpressionError(f"JSONata expression {shown(source)} is nested too deeply") from None
    interpreter.set_validate_input(False)  # the context is JSON already; walking it costs
    interpreter.set_output_convert_nulls(False)  # _to_json converts, within bounds
    for name, function in _GUARDED.items():
        interpreter.environment.bind(name, function)
    return Expression(source, interpreter)


def truthy(value: Any) -> bool:
    return bool(Jsonata.boolize(value))
