"""``integrationhub check``: validate flow files offline, pointing at the line of each problem.

What is checked, without a hub: YAML/JSON syntax, the flow schema (the same ``Flow`` model the
hub uses), template and JSONata syntax, and action names and input keys against the connectors
installed here (their entry points). Credentials live in the hub's Vault and are not checked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from integrationhub.cli._common import EXIT_FAILED, JsonOption, err, out, print_json
from integrationhub.core import expressions, templates
from integrationhub.errors import ExpressionError, FlowInvalid, TemplateError
from integrationhub.models.flow import Flow

if TYPE_CHECKING:
    import yaml

    from integrationhub.connectors.registry import Registry

__all__ = ["Document", "DocumentError", "Problem", "check", "check_flow", "load_document"]

FLOW_SUFFIXES = {".yaml", ".yml", ".json"}
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class DocumentError(Exception):
    """A file that is not valid YAML or JSON."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class Document:
    """A parsed YAML or JSON file, and the node tree that knows each value's line."""

    path: str
    data: Any
    root: yaml.Node | None

    def line(self, loc: Loc) -> int:
        """The line of the value at ``loc``, or of its nearest parent that exists."""
        import yaml

        node, line = self.root, 1
        for part in loc:
            if node is None:
                break
            line = node.start_mark.line + 1
            node, key_line = _child(node, part)
            if key_line is not None:
                line = key_line
        if node is not None and not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            line = node.start_mark.line + 1
        return line

    def problem(self, loc: Loc, message: str) -> Problem:
        where = ".".join(str(p) for p in loc)
        return Problem(self.path, self.line(loc), f"{where}: {message}" if where else message)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, int | None]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value, key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], None
    return None, None


def load_document(path: Path | str, text: str | None = None) -> Document:
    """Parse a flow file (``-``: standard input, read as YAML, which covers JSON)."""
    import yaml  # here, not at the top: most commands never parse a file

    name = str(path)
    if text is None:
        text = sys.stdin.read() if name == "-" else Path(path).read_text(encoding="utf-8")
    if name.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentError(Problem(name, exc.lineno, f"invalid JSON: {exc.msg}")) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            reason = getattr(exc, "problem", None) or str(exc)
            line = mark.line + 1 if mark is not None else 1
            context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
            if context and start is not None and start.line + 1 != line:
                reason += f" ({context} started on line {start.line + 1})"
            raise DocumentError(Problem(name, line, f"invalid YAML: {reason}")) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # valid JSON that YAML 1.1 reads differently: no line numbers
        root = None
    return Document(name, data, root)


def check_flow(document: Document, registry: Registry) -> list[Problem]:
    data = document.data
    if not isinstance(data, dict):
        return [Problem(document.path, 1, "a flow definition must be a mapping")]
    problems = list(_template_problems(document, data))
    problems += _expression_problems(document, data)
    try:
        Flow.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(error["loc"])
            # A broken template or expression is already reported at its own key, precisely.
            precise = "template" in error["msg"] or "jsonata" in error["msg"].lower()
            if precise and any(p.message.startswith(".".join(map(str, loc))) for p in problems):
                continue
            problems.append(document.problem(loc, error["msg"]))
    # Actions are checked even when the schema is broken elsewhere, so one run shows all.
    steps = data.get("steps")
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, dict) and isinstance(step.get("action"), str):
            given = step.get("input")
            if expressions.is_expression(given):
                continue  # computed when the step runs
            problems.extend(
                _action_problems(
                    document,
                    registry,
                    index,
                    step["action"],
                    given if isinstance(given, dict) else {},
                )
            )
    return sorted(problems, key=lambda p: p.line)


def _template_problems(document: Document, data: dict[str, Any]) -> Iterator[Problem]:
    places: list[tuple[Loc, Any]] = []
    steps = data.get("steps")
    if isinstance(steps, list):
        places += [
            (("steps", i, "input"), s.get("input"))
            for i, s in enumerate(steps)
            if isinstance(s, dict)
        ]
    trigger = data.get("trigger")
    for kind in ("pulsar", "schedule"):
        if isinstance(trigger, dict) and isinstance(trigger.get(kind), dict):
            places.append((("trigger", kind, "parameters"), trigger[kind].get("parameters")))
    for loc, value in places:
        for where, text in _strings(loc, value):
            try:
                templates.check(text)
            except TemplateError as exc:
                yield document.problem(where, exc.message)


def _expression_problems(document: Document, data: dict[str, Any]) -> list[Problem]:
    problems = []
    steps = data.get("steps")
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        for where, node in expressions.expressions_in(step.get("input"), ("steps", index, "input")):
            try:
                expressions.check(node)
            except ExpressionError as exc:
                problems.append(document.problem((*where, expressions.KEY), exc.message))
    return problems


def _strings(loc: Loc, value: Any) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif expressions.is_expression(value):
        return  # JSONata, not a template: checked by _expression_problems
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings((*loc, str(key)), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings((*loc, index), item)


def _action_problems(
    document: Document, registry: Registry, index: int, name: str, given: dict[str, Any]
) -> Iterator[Problem]:
    try:
        action = registry.action(name)
    except FlowInvalid as exc:
        yield document.problem(("steps", index, "action"), exc.message)
        return
    fields = {f.alias or key: f for key, f in action.input_model.model_fields.items()}
    for key, field in fields.items():
        if field.is_required() and key not in given:
            yield document.problem(("steps", index, "input"), f"{name!r} needs the input {key!r}")
    if action.input_model.model_config.get("extra") == "forbid":
        for key in given:
            if key not in fields:
                known = ", ".join(sorted(fields))
                yield document.problem(
                    ("steps", index, "input", key),
                    f"{name!r} takes no input {key!r}; it takes {known}",
                )


def flow_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Each file named, and the flow files directly in each directory named (as the hub loads
    a flows directory)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix in FLOW_SUFFIXES)
        else:
            yield path


def check(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Flow files, or directories of them (*.yaml, *.yml, *.json).", show_default=False
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Validate flow files offline (syntax, schema, templates and JSONata, actions); problems
    are printed as path:line: reason, and make the exit code 1."""
    import logging

    import structlog

    from integrationhub.connectors.registry import Registry  # only this command needs them

    # The output is for people and scripts: connector modules' logs only when they warn.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    registry = Registry.from_entry_points()
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    files = 0
    for path in flow_files(paths):
        files += 1
        try:
            document = load_document(path)
        except DocumentError as exc:
            problems.append(exc.problem)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 1, f"cannot read: {exc}"))
            continue
        found = check_flow(document, registry)
        problems += found
        flow_id = document.data.get("id") if isinstance(document.data, dict) else None
        if not found and isinstance(flow_id, str):
            if flow_id in seen:
                problems.append(
                    document.problem(("id",), f"{flow_id!r} is also the id in {seen[flow_id]}")
                )
            seen[flow_id] = str(path)
    if as_json:
        print_json({"files": files, "problems": [asdict(p) for p in problems]})
    else:
        for problem in problems:
            out.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        summary = f"{files} file{'s' * (files != 1)} checked, {len(problems)} problem" + (
            "s" * (len(problems) != 1)
        )
        err.print(summary, style="red" if problems else "green", highlight=False)
    if problems or files == 0:
        raise typer.Exit(EXIT_FAILED)
