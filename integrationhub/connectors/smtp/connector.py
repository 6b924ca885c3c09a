from __future__ import annotations

import ssl
import unicodedata
from email.message import Message
from typing import Annotated, Any

import aiosmtplib
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, EmailStr, Field

from integrationhub.connectors.base import BaseConnector, action
from integrationhub.connectors.smtp.compose import compose
from integrationhub.connectors.smtp.credential import SmtpCredential
from integrationhub.core.connections import ConnectionPool
from integrationhub.errors import PermanentError, RetryableError

__all__ = ["EmailSent", "SendEmail", "SmtpConnector"]


def _single_line(value: str) -> str:
    # A line break in a header value would let the caller inject headers of their own, and
    # Python's email package breaks lines at more than CR and LF (VT, FF, FS, GS, RS, NEL,
    # U+2028, U+2029): refuse every control and separator character but the tab.
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") and char != "\t" for char in value):
        raise ValueError("must not contain line breaks or control characters")
    return value


HeaderText = Annotated[str, Field(max_length=998), AfterValidator(_single_line)]
Address = Annotated[EmailStr, AfterValidator(_single_line)]
Recipients = Annotated[list[Address], Field(min_length=1, max_length=100)]


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class SendEmail(BaseModel):
    """An HTML email; the plain-text alternative is derived from the HTML."""

    model_config = ConfigDict(extra="forbid")

    to: Annotated[Recipients, BeforeValidator(_as_list), Field(description="one address or a list")]
    subject: HeaderText
    body: str = Field(max_length=512 * 1024, description="HTML")
    cc: list[Address] = Field(default_factory=list, max_length=100)
    bcc: list[Address] = Field(default_factory=list, max_length=100)
    reply_to: Address | None = None


class EmailSent(BaseModel):
    message_id: str
    recipients: list[str] = Field(description="the recipients the server accepted")
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="recipients the server refused while accepting others, with its answer",
    )


class SmtpConnector(BaseConnector[SmtpCredential]):
    """Send mail over SMTP: plain, STARTTLS or implicit TLS."""

    name = "smtp"

    @action("smtp-email", safe_to_repeat=False)
    async def send_email(self, params: SendEmail) -> EmailSent:
        """Send an HTML email (multipart/alternative with a derived plain-text part)."""
        cred = self.credential
        message = self._compose(params)
        recipients = [*params.to, *params.cc, *params.bcc]
        pool = self.context.connections or _ONE_OFF
        session: _Session | None = None
        try:
            async with pool.connection(
                _pool_key(cred), self._connect, _quit, usable=_is_connected, abort=_drop
            ) as session:
                session.message_sent = False
                refused, _ = await session.send_message(message, recipients=recipients)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentError(
                f"SMTP server refused the login: {exc.code} {exc.message}"
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"SMTP server refused every recipient: {_answers(exc)}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            answer = f"SMTP server answered {exc.code} {exc.message}"
            if 400 <= exc.code < 500:
                raise RetryableError(answer) from exc
            raise PermanentError(answer) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Lost once the message went out, the server may have taken it without a word.
            raise RetryableError(
                f"SMTP server {cred.host}:{cred.port} unreachable: {exc}",
                effect_possible=session is not None and session.message_sent,
            ) from exc
        # The others have the email: failing the step now would only send it to them again.
        return EmailSent(
            message_id=message["Message-ID"],
            recipients=[r for r in recipients if r not in refused],
            refused={r: f"{answer.code} {answer.message}" for r, answer in refused.items()},
        )

    async def _connect(self) -> _Session:
        """A connected session, past STARTTLS and login."""
        cred = self.credential
        smtp = _Session(
            hostname=cred.host,
            port=cred.port,
            username=cred.username,
            password=cred.password.get_secret_value() if cred.password else None,
            use_tls=cred.security == "tls",
            start_tls=cred.security == "starttls",
            tls_context=self._tls_context(),
            timeout=20,
        )
        await smtp.connect()
        return smtp

    def _compose(self, params: SendEmail) -> Message:
        domain = self.credential.from_address.rpartition("@")[2]
        headers = {
            "From": self.credential.from_address,
            "To": ", ".join(params.to),
            "Cc": ", ".join(params.cc),
            "Reply-To": params.reply_to or "",
            "Subject": params.subject,
            "Message-ID": f"<{self.context.run_id}.{self.context.step_id}@{domain}>",
        }
        return compose({name: value for name, value in headers.items() if value}, params.body)

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.credential.security == "none":
            return None
        return ssl.create_default_context(cadata=self.credential.ca_cert or None)


class _Session(aiosmtplib.SMTP):
    """An SMTP session that notes when a message's content is sent: a failure before that
    (connection refused, a session the server had closed) cannot have delivered it."""

    message_sent = False

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.message_sent = True
        return await super().data(message, **kwargs)


# Without the engine's pool (a connector called on its own), each call has its session.
_ONE_OFF = ConnectionPool(max_idle_per_key=0)


def _pool_key(cred: SmtpCredential) -> tuple[object, ...]:
    # The whole credential, secrets included, so that sessions logged in as one user are never
    # handed to a call made with another credential.
    return (SmtpCredential, *cred.reveal().items())


def _is_connected(smtp: aiosmtplib.SMTP) -> bool:
    # A server that closed an idle session is noticed here, before anything is sent on it.
    return smtp.is_connected


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit()
    except aiosmtplib.SMTPException:
        smtp.close()


def _drop(smtp: aiosmtplib.SMTP) -> None:
    # The call was cancelled mid-transaction: no QUIT, which would wait for the server's answer.
    smtp.close()


def _answers(exc: aiosmtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
