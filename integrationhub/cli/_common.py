"""What every command shares: the connection to the hub, its errors as exit codes, output.

Exit codes: 0 done; 1 the hub refused or failed the request, a run failed, or ``check`` found
problems; 2 a usage error; 3 the hub could not be reached; 4 a wait ran out before the run ended.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from integrationhub.client import Client, ClientError, HubUnreachable, RunPublic, WaitTimedOut

__all__ = [
    "EXIT_FAILED",
    "EXIT_TIMEOUT",
    "EXIT_UNREACHABLE",
    "JsonOption",
    "Settings",
    "connect",
    "err",
    "escape",
    "fail",
    "out",
    "print_json",
    "run_table",
    "table",
    "when",
]

EXIT_FAILED = 1
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4

out = Console(soft_wrap=False)
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

STATUS_STYLE = {
    "queued": "cyan",
    "running": "blue",
    "sending": "blue",
    "pending": "dim",
    "succeeded": "green",
    "skipped": "dim",
    "failed": "red",
    "cancelled": "yellow",
}


@dataclass(frozen=True)
class Settings:
    """The global options: where the hub is and the key to use (None: the client's default)."""

    url: str | None
    api_key: str | None


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def connect(ctx: typer.Context) -> Iterator[Client]:
    """A client for the hub the global options name; its errors end the command clearly."""
    settings: Settings = ctx.obj
    try:
        with Client(settings.url, api_key=settings.api_key) as client:
            yield client
    except WaitTimedOut as exc:
        fail(
            f"{exc.message}; follow it with: integrationhub runs show {exc.run.run_id}",
            code=EXIT_TIMEOUT,
        )
    except HubUnreachable as exc:
        fail(
            f"{exc.message}\n       is it running? set --url or INTEGRATIONHUB_URL",
            code=EXIT_UNREACHABLE,
        )
    except ClientError as exc:
        hint = ""
        if exc.code == "unauthorized":
            hint = "; set --api-key or INTEGRATIONHUB_API_KEY (default: .integrationhub/api-key)"
        fail(f"{exc.message} [{exc.code}]{hint}")


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colour, no wrapping), for scripts."""
    sys.stdout.write(json.dumps(_plain(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def table(*columns: str, no_wrap: tuple[str, ...] = ()) -> Table:
    result = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        result.add_column(column, no_wrap=column in no_wrap, overflow="fold")
    return result


def status(value: str) -> str:
    style = STATUS_STYLE.get(value)
    return f"[{style}]{value}[/]" if style else value


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def run_table(run: RunPublic) -> None:
    """A run for people: its summary, then one line per step."""
    out.print(f"[bold]run[/] {run.run_id}", highlight=False)
    out.print(f"  flow      {run.flow_id}", highlight=False)
    out.print(f"  status    {status(str(run.status))}", highlight=False)
    out.print(f"  created   {when(run.created_at)}", highlight=False)
    out.print(f"  finished  {when(run.finished_at)}", highlight=False)
    if run.error:
        out.print(f"  error     [red]{escape(run.error)}[/]", highlight=False)
    steps = table("STEP", "STATUS", "ATTEMPTS", "OUTPUT / ERROR", no_wrap=("STEP", "STATUS"))
    for step in run.steps:
        detail = step.error or (json.dumps(step.output, ensure_ascii=False) if step.output else "")
        steps.add_row(escape(step.id), status(str(step.status)), str(step.attempts), escape(detail))
    out.print()
    out.print(steps)
