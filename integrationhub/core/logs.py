"""structlog JSON logs, one line per event, with secrets redacted by a processor.

Redaction does not rely on callers remembering: any key that names a secret, and any
``SecretStr``, is masked before rendering, at any depth of the event.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from pydantic import SecretStr

__all__ = ["REDACTED", "configure", "redact_secrets"]

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|private[_-]?key|credentials?_data",
    re.IGNORECASE,
)


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEY.search(key)
            else _redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item, depth + 1) for item in value]
    return value


def redact_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key != "event" and _SECRET_KEY.search(key):
            event[key] = REDACTED
        else:
            event[key] = _redact(value)
    return event


def configure(level: str = "INFO") -> None:
    """JSON lines on stdout for structlog and for the standard library (uvicorn, alembic)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Per-request and per-command chatter from libraries; their warnings still come through.
    for name in (
        "uvicorn.access",
        "httpx",
        "httpcore",
        "mail.log",
        "alembic",
        "mcp.server.streamable_http",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
