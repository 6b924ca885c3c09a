"""A hub served by a real uvicorn server on 127.0.0.1 (a free port, a background thread), for
clients that need a socket: the MCP SDK's client, ``integrationhub.client``, the CLI in a
subprocess.

``served_hub(settings)`` serves any settings; the ``served`` fixture (taken into
``tests/integration/conftest.py``) is one hub per test module on the session's OpenBao and
pulsar-lite, SQLite, with ``smtp-credentials`` pointing at an SMTP sink of its own. Tests that
share it use ids of their own and clear ``served.smtp.messages`` before they count mail.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from integrationhub.main import create_app
from integrationhub.settings import Settings
from tests.integration.conftest_pulsar import PulsarBroker
from tests.support.hub import API_KEY, hub_settings
from tests.support.smtp import SmtpSink, start_sink

__all__ = ["ServedHub", "served", "served_hub"]


@dataclass
class ServedHub:
    url: str
    api_key: str = API_KEY
    smtp: SmtpSink | None = None

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def put_smtp_credential(
        self, port: int, credential_id: str = "smtp-credentials", **extra: Any
    ) -> None:
        data = {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from_address": "hub@example.org",
        } | extra
        with self.http() as http:
            response = http.put(
                f"/api/v1/credentials/{credential_id}", json={"type": "smtp", "data": data}
            )
        assert response.status_code in (200, 201), response.text


@contextmanager
def served_hub(settings: Settings, *, startup_timeout: float = 30) -> Iterator[ServedHub]:
    """Serve ``create_app(settings)`` until the block ends; the hub starts in uvicorn's lifespan
    on the server thread's event loop, as it does in production."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until uvicorn accepts them
    host, port = sock.getsockname()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            log_config=None,
            access_log=False,
            lifespan="on",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"hub:{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:  # a bounded wait for the lifespan (the hub) to start
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the served hub did not start (see the log above)")
            time.sleep(0.02)
        yield ServedHub(url=f"http://{host}:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    openbao: tuple[str, str],
    pulsar_broker: PulsarBroker,
) -> Iterator[ServedHub]:
    if not pulsar_broker.running:  # an earlier test may have stopped it to prove recovery
        asyncio.run(pulsar_broker.start())
    addr, token = openbao
    sink = SmtpSink()
    controller = start_sink(sink)
    settings = hub_settings(
        tmp_path_factory.mktemp("served"),
        vault_addr=addr,
        vault_token=token,
        pulsar_url=pulsar_broker.url,
    )
    try:
        with served_hub(settings) as hub:
            hub.smtp = sink
            hub.put_smtp_credential(sink.port)
            yield hub
    finally:
        controller.stop()
