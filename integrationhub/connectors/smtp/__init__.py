"""Send mail over SMTP (RFC 5321) with aiosmtplib.

Credential type ``smtp``: ``host``, ``port``, ``username`` and ``password`` (optional: no AUTH
when absent), ``security`` (``none``, ``starttls`` or ``tls``), ``from_address``, and an optional
``ca_cert`` (PEM) for servers with a private CA.

Quirks worth knowing:
- The Message-ID is derived from the run and step (``<run.step@domain>``), so a message sent again
  after an uncertain outcome can be recognised as a duplicate downstream.
- 4xx replies are transient by RFC 5321 and retried; 5xx are permanent.
"""

from __future__ import annotations

from integrationhub.connectors.smtp.connector import EmailSent, SendEmail, SmtpConnector
from integrationhub.connectors.smtp.credential import SmtpCredential

__all__ = ["EmailSent", "SendEmail", "SmtpConnector", "SmtpCredential"]
