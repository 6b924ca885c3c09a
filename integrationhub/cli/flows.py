"""``integrationhub flows``: list, show, apply and delete flow definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.syntax import Syntax

from integrationhub.cli._common import (
    JsonOption,
    connect,
    escape,
    fail,
    out,
    print_json,
    table,
)
from integrationhub.cli.check import DocumentError, flow_files, load_document

app = typer.Typer(help="Flow definitions: list, show, apply, delete.", no_args_is_help=True)


@app.command("list")
def list_flows(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The flows the hub can run."""
    with connect(ctx) as hub:
        flows = hub.list_flows()
    if as_json:
        print_json(flows)
        return
    rows = table("ID", "SOURCE", "STEPS", "DESCRIPTION", no_wrap=("ID", "SOURCE"))
    for flow in flows:
        summary = " ".join(flow.description.split())
        rows.add_row(escape(flow.id), flow.source, str(len(flow.steps)), escape(summary))
    out.print(rows)


@app.command("show")
def show_flow(
    ctx: typer.Context,
    flow_id: Annotated[str, typer.Argument(metavar="ID", help="A flow id.")],
    as_json: JsonOption = False,
) -> None:
    """One flow's definition (YAML; JSON with --json)."""
    with connect(ctx) as hub:
        flow = hub.get_flow(flow_id)
    if as_json:
        print_json(flow)
        return
    import yaml

    text = yaml.safe_dump(
        flow.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True
    )
    out.print(Syntax(text, "yaml", background_color="default", word_wrap=True))


@app.command("apply")
def apply_flows(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...",
            help="Flow files (YAML or JSON), or directories of them; - reads standard input.",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Create or replace flows from files."""
    documents = []
    for path in flow_files(paths):
        try:
            documents.append(load_document(path))
        except DocumentError as exc:
            fail(str(exc.problem))
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{path}: cannot read: {exc}")
    applied = []
    with connect(ctx) as hub:
        for document in documents:
            if not isinstance(document.data, dict):
                fail(f"{document.path}:1: a flow definition must be a mapping")
            applied.append(hub.put_flow(document.data))
            if not as_json:
                out.print(
                    f"applied flow [bold]{escape(applied[-1].id)}[/] from {escape(document.path)}"
                )
    if as_json:
        print_json(applied)


@app.command("delete")
def delete_flow(
    ctx: typer.Context,
    flow_id: Annotated[str, typer.Argument(metavar="ID", help="A flow id.")],
) -> None:
    """Delete a flow stored through the API (flows from files cannot be deleted)."""
    with connect(ctx) as hub:
        hub.delete_flow(flow_id)
    out.print(f"deleted flow [bold]{escape(flow_id)}[/]")
