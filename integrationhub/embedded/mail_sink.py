"""A local SMTP server (aiosmtpd) that keeps every email it receives as an ``.eml`` file.

It serves the quick start: with it, ``send-summary-email`` delivers a real email on a machine
with no mail server, and the user can open the file it wrote.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

__all__ = ["MailSink"]

log = structlog.get_logger()


class _SaveToDirectory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Envelope) -> str:
        name = f"{uuid.uuid4().hex}.eml"
        content = envelope.original_content or b""
        tmp = self.directory / f".{name}.tmp"
        await asyncio.to_thread(tmp.write_bytes, content)
        os.replace(tmp, self.directory / name)  # readers never see half a message
        log.info(
            "mail_sink.received", file=str(self.directory / name), recipients=len(envelope.rcpt_tos)
        )
        return "250 Message accepted for delivery"


class MailSink:
    def __init__(self, *, directory: Path, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            _SaveToDirectory(self.directory), hostname=self.host, port=self.port
        )
        await asyncio.to_thread(controller.start)
        self._controller = controller
        self.port = controller.server.sockets[0].getsockname()[1]
        log.info(
            "mail_sink.started",
            host=self.host,
            port=self.port,
            directory=str(self.directory.resolve()),
        )

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None
