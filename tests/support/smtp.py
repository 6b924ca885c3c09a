"""A real SMTP server (aiosmtpd) for tests: it keeps what it receives, and can be told to
refuse, to require STARTTLS or implicit TLS, and to require a login."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    peer: Any = None  # the client's (host, port): one value per SMTP session


@dataclass
class SmtpSink:
    """Handler and record of one test SMTP server."""

    messages: list[Received] = field(default_factory=list)
    refuse_next: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 Try again later"
    unknown_users: set[str] = field(default_factory=set)  # RCPT TO answered 550
    users: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to take before answering DATA
    data_received: int = 0  # messages whose content reached the server, answered or not
    in_data: int = 0  # sessions between DATA and its answer now
    most_in_data: int = 0  # the most there ever were at once
    host: str = "127.0.0.1"
    port: int = 0

    async def handle_RCPT(
        self, _server: SMTP, _session: Any, envelope: Envelope, address: str, _options: Any
    ) -> str:
        if address in self.unknown_users:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: SMTP, session: Any, envelope: Envelope) -> str:
        self.data_received += 1
        self.in_data += 1
        self.most_in_data = max(self.most_in_data, self.in_data)
        try:
            return await self._answer_data(session, envelope)
        finally:
            self.in_data -= 1

    async def _answer_data(self, session: Any, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse_next:
            return self.refuse_next.pop(0)
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        assert isinstance(message, EmailMessage)
        self.messages.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, session.peer)
        )
        return "250 OK"

    def authenticate(
        self, _server: SMTP, _session: Any, _envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            mechanism in {"LOGIN", "PLAIN"}
            and isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        ):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def start_sink(
    sink: SmtpSink,
    *,
    tls: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    idle_timeout: float | None = None,
) -> Controller:
    kwargs: dict[str, Any] = {}
    if idle_timeout is not None:  # the server closes a session idle this long
        kwargs["timeout"] = idle_timeout
    if sink.users:
        kwargs.update(authenticator=sink.authenticate, auth_require_tls=tls is not None)
    if tls is not None and not implicit_tls:
        kwargs.update(tls_context=tls, require_starttls=True)
    sink.port = free_port()
    controller = Controller(
        sink,
        hostname=sink.host,
        port=sink.port,
        ssl_context=tls if implicit_tls else None,
        **kwargs,
    )
    controller.start()
    return controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
