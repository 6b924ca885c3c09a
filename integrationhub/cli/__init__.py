"""The ``integrationhub`` command: ``serve`` the hub (or only execute runs: ``worker``), and
manage a running one over its API (flows, runs, credentials, connectors), or ``check`` flow
files offline.

Every command but ``serve``, ``worker`` and ``check`` talks to the hub through
``integrationhub.client``, at ``--url`` / ``INTEGRATIONHUB_URL`` with ``--api-key`` /
``INTEGRATIONHUB_API_KEY`` (default: the key in ``.integrationhub/api-key``, which a hub started
here creates).
"""

from __future__ import annotations

from typing import Annotated

import typer

from integrationhub.cli import connectors, credentials, flows, runs
from integrationhub.cli._common import Settings
from integrationhub.cli.check import check

__all__ = ["app"]

app = typer.Typer(
    help="IntegrationHub: connectors, credentials in Vault, durable flow runs.",
    epilog="Exit codes: 0 done; 1 refused or failed (a run, a check); 2 usage; "
    "3 hub unreachable; 4 wait timed out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold an API key or credential data
)
app.add_typer(flows.app, name="flows")
app.add_typer(runs.app, name="runs")
app.add_typer(credentials.app, name="credentials")
app.add_typer(connectors.app, name="connectors")
app.command("trigger")(runs.trigger)
app.command("check")(check)


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            envvar="INTEGRATIONHUB_URL",
            help="The hub's address (default: http://127.0.0.1:8000)",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="INTEGRATIONHUB_API_KEY",
            help="API key (default: the contents of .integrationhub/api-key)",
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """IntegrationHub's command line."""
    ctx.obj = Settings(url=url, api_key=api_key)


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on [default: INTEGRATIONHUB_HOST or 127.0.0.1]"),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port [default: INTEGRATIONHUB_PORT or 8000]")
    ] = None,
) -> None:
    """Start the hub (with embedded OpenBao, pulsar-lite and SQLite unless configured)."""
    import contextlib

    import uvicorn

    from integrationhub.settings import Settings as HubSettings
    from integrationhub.workers import shared_metrics

    settings = HubSettings()
    # Worker processes count their runs where /metrics can read them: set up before the
    # app's modules define their metrics.
    with shared_metrics() if settings.worker_processes else contextlib.nullcontext():
        from integrationhub.main import create_app

        uvicorn.run(
            create_app(settings),
            host=host or settings.host,
            port=settings.port if port is None else port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )


@app.command()
def worker() -> None:
    """Execute runs only, without the HTTP API: against the engines of a running hub (which
    starts its own with INTEGRATIONHUB_WORKER_PROCESSES) or shared ones at scale."""
    import asyncio

    import uvloop

    from integrationhub.settings import Settings as HubSettings
    from integrationhub.workers import run_worker

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(run_worker(HubSettings()))
