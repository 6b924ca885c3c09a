"""HTTP: any request to any HTTP API, as a flow step (``http-request``).

Credentials (optional), one type per way of signing in, each applied by the hub:
``http-basic`` (username, password), ``http-bearer`` (token), ``http-api-key`` (key, header),
``http-hmac`` (secret, key_id), ``oauth2-client-credentials`` (token_url, client_id,
client_secret, scope, audience) and ``oauth2-refresh-token`` (token_url, client_id,
client_secret, refresh_token, access_token, expires_at). Each may carry a ``base_url``: the
credential is then only ever sent under it, and a ``url`` that starts with ``/`` is joined to it.

Example step::

    - id: create_ticket
      action: http-request
      credential: helpdesk-token          # an http-bearer credential
      input:
        method: POST
        url: https://helpdesk.example.com/api/tickets
        json: {title: "{{ parameters.title }}"}

Quirks:
- 2xx succeed; 3xx are followed (at most ``max_redirects``, each hop through the SSRF guard,
  the credential only on the first request's origin); 4xx fail for good, and 5xx, 408, 409,
  425 and 429 are retried by the engine, after ``Retry-After`` when given. ``accept_status``
  turns chosen failures into plain answers (``[404]`` to test for existence).
- ``safe_to_repeat`` is false for every method: the flag is per action, and the engine decides
  before it renders the input. A step with an idempotent method (GET, HEAD, OPTIONS, PUT,
  DELETE) can set ``on_unknown_outcome: repeat``.
- Addresses that are not public (loopback, private, link-local, metadata) are refused unless
  ``INTEGRATIONHUB_HTTP_ALLOW_NETWORKS`` admits them; bodies over
  ``INTEGRATIONHUB_HTTP_MAX_RESPONSE_BYTES`` (10 MiB) fail the step.
- Without a credential, a remote 429 is honoured by the retry only; with one, it holds back
  every later call with that credential (``core/ratelimit.py``).
"""

from __future__ import annotations

from integrationhub.connectors.http.connector import (
    HttpConnector,
    HttpResponseReceived,
    SendHttpRequest,
)
from integrationhub.connectors.http.credentials import (
    HttpApiKeyCredential,
    HttpBasicCredential,
    HttpBearerCredential,
    HttpHmacCredential,
    OAuth2ClientCredential,
    OAuth2RefreshCredential,
)

__all__ = [
    "HttpApiKeyCredential",
    "HttpBasicCredential",
    "HttpBearerCredential",
    "HttpConnector",
    "HttpHmacCredential",
    "HttpResponseReceived",
    "OAuth2ClientCredential",
    "OAuth2RefreshCredential",
    "SendHttpRequest",
]
