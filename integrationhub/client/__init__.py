"""A Python client for IntegrationHub's HTTP API, blocking (``Client``) or asyncio
(``AsyncClient``), typed with the hub's own models.

    from integrationhub.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as hub:
        accepted = hub.trigger("send-summary-email", {"to": ..., "subject": ..., "body": ...})
        run = hub.wait_for_run(accepted.run_id, timeout=30)

Failures raise the ``ClientError`` tree (see ``_exceptions``), carrying the API's error code and
message.
"""

from integrationhub.client._async import AsyncClient
from integrationhub.client._config import DEFAULT_URL
from integrationhub.client._exceptions import (
    ClientError,
    Conflict,
    HubUnreachable,
    InvalidRequest,
    NotFound,
    ServerError,
    ServerUnavailable,
    Unauthorized,
    WaitTimedOut,
)
from integrationhub.client._sync import Client
from integrationhub.models.credential import CredentialPublic
from integrationhub.models.flow import Flow, FlowPublic
from integrationhub.models.run import RunAccepted, RunPublic, RunStatus, StepPublic

__all__ = [
    "DEFAULT_URL",
    "AsyncClient",
    "Client",
    "ClientError",
    "Conflict",
    "CredentialPublic",
    "Flow",
    "FlowPublic",
    "HubUnreachable",
    "InvalidRequest",
    "NotFound",
    "RunAccepted",
    "RunPublic",
    "RunStatus",
    "ServerError",
    "ServerUnavailable",
    "StepPublic",
    "Unauthorized",
    "WaitTimedOut",
]
