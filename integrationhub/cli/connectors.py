"""``integrationhub connectors``: what this hub can talk to."""

from __future__ import annotations

import typer

from integrationhub.cli._common import JsonOption, connect, escape, out, print_json, table

app = typer.Typer(help="The connectors installed in the hub.", no_args_is_help=True)


@app.command("list")
def list_connectors(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Each connector with its credential type and fields, actions and sources."""
    with connect(ctx) as hub:
        connectors = hub.list_connectors()
    if as_json:
        print_json(connectors)
        return
    rows = table("NAME", "CREDENTIAL", "FIELDS", "ACTIONS", "SOURCES", no_wrap=("NAME",))
    for connector in connectors:
        fields = ", ".join(
            f["name"] + ("*" if f["required"] else "") for f in connector["credential_fields"]
        )
        rows.add_row(
            escape(connector["name"]),
            escape(connector["credential_type"] or "-"),
            escape(fields or "-"),
            escape(", ".join(a["name"] for a in connector["actions"]) or "-"),
            escape(", ".join(s["name"] for s in connector["sources"]) or "-"),
        )
    out.print(rows)
    out.print("[dim]* required field[/]")
