"""``integrationhub credentials``: write credentials into the hub's Vault; read back metadata.

A secret never comes from the command line (argv is visible to other users in ``ps`` and kept
in shell history): ``--from-file`` reads the data from a file or standard input, ``--prompt``
asks for each field, hiding what is typed for secret fields.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from integrationhub.cli._common import (
    JsonOption,
    connect,
    err,
    escape,
    fail,
    out,
    print_json,
    table,
)
from integrationhub.cli.check import DocumentError, load_document
from integrationhub.client import Client, CredentialPublic

app = typer.Typer(
    help="Credentials: set, list, delete (values never leave the hub).", no_args_is_help=True
)

CredentialId = Annotated[str, typer.Argument(metavar="ID", help="A credential id.")]


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = load_document(path).data
    except DocumentError as exc:
        # The reason only: the line may hold a secret, the message never does.
        fail(str(exc.problem))
    except OSError as exc:
        fail(f"{path}: cannot read: {exc}")
    if not isinstance(data, dict) or not data:
        fail(f"{path}: the credential data must be a mapping of fields to values")
    return data


def _fields(hub: Client, credential_type: str) -> list[dict[str, Any]]:
    for connector in hub.list_connectors():
        if connector["credential_type"] == credential_type:
            return list(connector["credential_fields"])
    known = sorted({c["credential_type"] for c in hub.list_connectors() if c["credential_type"]})
    fail(f"unknown credential type {credential_type!r}; known types: {', '.join(known)}")


def _prompted(fields: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    err.print("[dim]Enter each field; leave an optional one empty to skip it.[/]")
    for field in fields:
        label = field["name"] + ("" if field["required"] else " (optional)")
        value = typer.prompt(
            label,
            default="" if not field["required"] else None,
            hide_input=field["secret"],
            show_default=False,
            err=True,
        )
        if value != "":
            data[field["name"]] = value
    return data


@app.command("set")
def set_credential(
    ctx: typer.Context,
    credential_id: CredentialId,
    credential_type: Annotated[
        str, typer.Option("--type", "-t", help="The credential type, e.g. smtp or zulip.")
    ],
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            "-f",
            metavar="FILE",
            help="The data as a JSON/YAML mapping; - for stdin.",
        ),
    ] = None,
    prompt: Annotated[
        bool, typer.Option("--prompt", help="Ask for each field (secret ones hidden).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create or replace a credential. Prints its metadata, never its values."""
    if (from_file is None) == (not prompt):
        fail("give exactly one of --from-file FILE (- for stdin) or --prompt", code=2)
    with connect(ctx) as hub:
        if from_file is not None:
            data = _from_file(from_file)
        else:
            if not sys.stdin.isatty():
                err.print("[yellow]standard input is not a terminal; reading answers from it[/]")
            data = _prompted(_fields(hub, credential_type))
        meta = hub.put_credential(credential_id, type=credential_type, data=data)
    if as_json:
        print_json(meta)
    else:
        out.print(
            f"credential [bold]{escape(meta.id)}[/] ({escape(meta.type)}) saved, version "
            f"{meta.version}: fields {escape(', '.join(meta.fields))}",
            highlight=False,
        )


@app.command("list")
def list_credentials(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Credentials' metadata: id, type, field names, version."""
    with connect(ctx) as hub:
        credentials: list[CredentialPublic] = hub.list_credentials()
    if as_json:
        print_json(credentials)
        return
    rows = table("ID", "TYPE", "FIELDS", "VERSION", "UPDATED", no_wrap=("ID", "TYPE"))
    for meta in credentials:
        rows.add_row(
            escape(meta.id),
            escape(meta.type),
            escape(", ".join(meta.fields)),
            str(meta.version),
            meta.updated_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(rows)


@app.command("delete")
def delete_credential(ctx: typer.Context, credential_id: CredentialId) -> None:
    """Delete a credential (every version)."""
    with connect(ctx) as hub:
        hub.delete_credential(credential_id)
    out.print(f"deleted credential [bold]{escape(credential_id)}[/]")
