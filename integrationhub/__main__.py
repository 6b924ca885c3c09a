"""``python -m integrationhub``: the ``integrationhub`` command."""

from integrationhub.cli import app

app(prog_name="integrationhub")
