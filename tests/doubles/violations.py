"""What every vendor double shares about violations: how one is recorded and described, and the
fixture body that fails a test when its requests (or the double's answers) broke the spec."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from openapi_core.deserializing.media_types.exceptions import MediaTypeDeserializeError

__all__ = ["Checked", "Violation", "checked", "describe"]


@dataclass(frozen=True)
class Violation:
    """A request that broke the spec, an answer of the double that did, or a double's gap."""

    kind: Literal["request", "response", "double"]
    method: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.method} {self.path}: {self.message}"


class Checked(Protocol):
    def reset(self) -> None: ...

    def take_violations(self) -> Sequence[object]: ...


Double = TypeVar("Double", bound=Checked)


def checked(double: Double, vendor: str) -> Iterator[Double]:
    """``yield from checked(server, "Jira")`` in a fixture: the double, reset for the test;
    teardown fails the test on any violation left (tests that provoke one on purpose
    ``take_violations()``)."""
    double.reset()
    yield double
    violations = double.take_violations()
    double.reset()
    assert not violations, f"{vendor} spec violations:\n" + "\n".join(f"  {v}" for v in violations)


def describe(exc: BaseException, limit: int = 500) -> str:
    """One line: the JSON-schema errors if the chain has any, else the exception chain."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__
    for cause in chain:
        if schema_errors := getattr(cause, "schema_errors", None):
            message = f"{type(exc).__name__}: " + "; ".join(map(_schema_error, schema_errors))
            break
    else:
        message = " <- ".join(map(_exception_text, chain))
    return message if len(message) <= limit else message[:limit] + "…"


def _exception_text(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, MediaTypeDeserializeError):
        text = f"cannot decode {exc.value!r} as {exc.mimetype}"
    else:
        try:
            text = str(exc).removeprefix(f"{name}: ")
        except AttributeError:  # openapi-core 0.23 formats a str value with .decode()
            text = ""
    return f"{name}: {text}" if text else name


def _schema_error(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where or 'body'}: {error.message}"[:300]
