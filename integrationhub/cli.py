"""The ``integrationhub`` command."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="IntegrationHub: connectors, credentials in Vault, durable flow runs.",
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """IntegrationHub's command line."""


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
    import uvicorn

    from integrationhub.main import create_app
    from integrationhub.settings import Settings

    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=settings.port if port is None else port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
