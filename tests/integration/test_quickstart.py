"""The quick start: a hub with nothing configured, started the ways the README names
(``uvicorn integrationhub.main:app``, and ``integrationhub serve`` as ``make run`` calls it),
runs OpenBao and pulsar-lite itself, creates its API key, and delivers the seed's email to its
local mail sink, which keeps it as a file."""

from __future__ import annotations

import email
import email.policy
import stat
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.hub import SEED
from tests.support.process import COMMAND, HubProcess
from tests.support.smtp import free_port

pytestmark = pytest.mark.integration


def mails(directory: Path) -> list[EmailMessage]:
    """The sink's .eml files, oldest first."""
    found = []
    for path in sorted(directory.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


async def test_embedded_hub_delivers_the_seed_to_its_mail_sink_and_keeps_state_across_restarts(
    tmp_path: Path,
):
    # Nothing but the mail sink, as `make run` sets it: every engine is the hub's own.
    env = {"INTEGRATIONHUB_MAIL_SINK": "true", "INTEGRATIONHUB_MAIL_SINK_PORT": str(free_port())}
    hub = HubProcess("quickstart", env=env, directory=tmp_path)
    hub.env["INTEGRATIONHUB_PORT"] = str(hub.port)
    data = tmp_path / "data"
    hub.command = [
        sys.executable,
        "-m",
        "uvicorn",
        "integrationhub.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(hub.port),
    ]
    try:
        await hub.start(timeout=120)

        key_file = data / "api-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        assert (await hub.wait_for_event("api_key.created"))["path"] == str(key_file.resolve())
        hub.client.headers["Authorization"] = f"Bearer {key}"
        response = await hub.client.post("/api/v1/trigger?wait=20", json=SEED)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "succeeded", response.json()
        (mail,) = mails(data / "mail")
        seeded_from = mail["From"]
        assert mail["To"] == "recipient@example.com"
        assert mail["Subject"] == SEED["parameters"]["subject"]
        assert mail.get_content_type() == "multipart/alternative"
        seeded = (await hub.client.get("/api/v1/credentials/smtp-credentials")).json()
        assert (seeded["type"], seeded["version"]) == ("smtp", 1)
        # The user points the credential elsewhere (here: the same sink, another sender).
        ours = {
            "host": "127.0.0.1",
            "port": int(env["INTEGRATIONHUB_MAIL_SINK_PORT"]),
            "security": "none",
            "from_address": "ours@example.org",
        }
        put = await hub.client.put(
            "/api/v1/credentials/smtp-credentials", json={"type": "smtp", "data": ours}
        )
        assert put.json()["version"] == 2
        await hub.stop()

        hub.command = [str(COMMAND), "serve"]  # as `make run`: port from INTEGRATIONHUB_PORT
        await hub.start(timeout=120)

        await hub.wait_for_event("api_key.loaded")
        kept = (await hub.client.get("/api/v1/credentials/smtp-credentials")).json()
        assert kept["version"] == 2  # survived the restart, and was not seeded over
        response = await hub.client.post("/api/v1/trigger?wait=20", json=SEED)
        assert response.json()["status"] == "succeeded", response.json()
        first, second = mails(data / "mail")
        assert (first["From"], second["From"]) == (seeded_from, "ours@example.org")
        assert all(key not in line for line in hub.lines())
    finally:
        await hub.close()
