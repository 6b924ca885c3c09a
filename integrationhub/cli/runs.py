"""``integrationhub trigger`` and ``integrationhub runs``: start runs, follow and act on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from integrationhub.cli._common import (
    EXIT_FAILED,
    JsonOption,
    connect,
    err,
    escape,
    fail,
    out,
    print_json,
    run_table,
    status,
    table,
    when,
)
from integrationhub.cli.check import DocumentError, load_document
from integrationhub.client import Client, RunAccepted, RunPublic, RunStatus

app = typer.Typer(help="Runs: list, show, retry, cancel.", no_args_is_help=True)

RunId = Annotated[str, typer.Argument(metavar="ID", help="A run id.")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the run to finish and show it.")]
Timeout = Annotated[
    float, typer.Option(min=0, help="With --wait: seconds to wait before giving up.")
]


def parse_params(pairs: list[str], params_file: Path | None) -> dict[str, Any]:
    """``--params-file`` first, then each ``--param k=v`` over it; a value is JSON when it
    parses as JSON (``3``, ``true``, ``["a"]``), else the string as given."""
    parameters: dict[str, Any] = {}
    if params_file is not None:
        try:
            data = load_document(params_file).data
        except DocumentError as exc:
            fail(str(exc.problem))
        except OSError as exc:
            fail(f"{params_file}: cannot read: {exc}")
        if not isinstance(data, dict):
            fail(f"{params_file}: the parameters must be a mapping")
        parameters.update(data)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--param {pair!r}: write it as KEY=VALUE")
        try:
            parameters[key] = json.loads(raw)
        except json.JSONDecodeError:
            parameters[key] = raw
    return parameters


def follow(hub: Client, run_id: str, *, timeout: float, as_json: bool) -> RunPublic:
    """Wait for the run with a spinner showing its state (on standard error)."""
    with err.status(f"run {run_id}: queued", spinner="dots") as spinner:

        def show(run: RunPublic) -> None:
            running = next((s.id for s in run.steps if s.status == "sending"), None)
            step = f", step {running}" if running else ""
            spinner.update(f"run {run_id}: {status(str(run.status))}{escape(step)}")

        return hub.wait_for_run(run_id, timeout=timeout, on_poll=None if as_json else show)


def report(run: RunPublic | RunAccepted, *, as_json: bool) -> None:
    """Print the run; a run that ended failed or cancelled makes the command fail."""
    if as_json:
        print_json(run)
    elif isinstance(run, RunPublic):
        run_table(run)
    else:
        out.print(f"run [bold]{run.run_id}[/] {status(str(run.status))}", highlight=False)
    if isinstance(run, RunPublic) and run.status in {RunStatus.failed, RunStatus.cancelled}:
        raise typer.Exit(EXIT_FAILED)


def trigger(
    ctx: typer.Context,
    flow_id: Annotated[str, typer.Argument(metavar="FLOW", help="The flow to run.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="KEY=VALUE", help="A parameter (repeat); JSON values parse."
        ),
    ] = None,
    params_file: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Parameters as a JSON/YAML mapping; - for stdin."),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Same key, same run: a repeated trigger starts no other.")
    ] = None,
    wait: Wait = False,
    timeout: Timeout = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Run a flow with parameters."""
    parameters = parse_params(param or [], params_file)
    with connect(ctx) as hub:
        accepted = hub.trigger(flow_id, parameters, idempotency_key=idempotency_key)
        if not wait:
            report(accepted, as_json=as_json)
            return
        run = follow(hub, accepted.run_id, timeout=timeout, as_json=as_json)
    report(run, as_json=as_json)


@app.command("list")
def list_runs(
    ctx: typer.Context,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow.")] = None,
    run_status: Annotated[
        RunStatus | None, typer.Option("--status", help="Only runs in this state.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Runs, newest first."""
    with connect(ctx) as hub:
        runs = hub.list_runs(flow_id=flow, status=run_status, limit=limit)
    if as_json:
        print_json(runs)
        return
    rows = table("RUN", "FLOW", "STATUS", "CREATED", "FINISHED", no_wrap=("RUN", "STATUS"))
    for run in runs:
        rows.add_row(
            run.run_id,
            escape(run.flow_id),
            status(str(run.status)),
            when(run.created_at),
            when(run.finished_at),
        )
    out.print(rows)


@app.command("show")
def show_run(ctx: typer.Context, run_id: RunId, as_json: JsonOption = False) -> None:
    """One run: its state, steps and outcome."""
    with connect(ctx) as hub:
        run = hub.get_run(run_id)
    if as_json:
        print_json(run)
    else:
        run_table(run)


@app.command("retry")
def retry_run(
    ctx: typer.Context,
    run_id: RunId,
    wait: Wait = False,
    timeout: Timeout = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Run a failed or cancelled run again from its failed step."""
    with connect(ctx) as hub:
        run = hub.retry_run(run_id)
        if wait:
            run = follow(hub, run_id, timeout=timeout, as_json=as_json)
    if wait or as_json:
        report(run, as_json=as_json)
    else:
        out.print(f"run [bold]{run.run_id}[/] {status(str(run.status))}", highlight=False)


@app.command("cancel")
def cancel_run(ctx: typer.Context, run_id: RunId, as_json: JsonOption = False) -> None:
    """Cancel a queued run now, or a running one when its current step ends."""
    with connect(ctx) as hub:
        run = hub.cancel_run(run_id)
    if as_json:
        print_json(run)
    else:
        out.print(f"run [bold]{run.run_id}[/] {status(str(run.status))}", highlight=False)
