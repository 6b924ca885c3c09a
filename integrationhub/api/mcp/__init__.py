"""The hub's tools for AI agents, over the Model Context Protocol (Streamable HTTP at ``/mcp``).

Four tools, each a thin call into the same services the HTTP API uses (``hub.catalog``,
``hub.triggers``, ``hub.store``), so an agent's trigger is validated, persisted and queued exactly
like an HTTP one:

- ``list_flows``: each flow's id, description and parameter schema;
- ``describe_flow``: one flow in full;
- ``trigger_integration_flow``: ``{"flow_id", "parameters"}`` (the HTTP trigger's exact shape),
  with optional ``wait_seconds`` and ``idempotency_key``;
- ``get_run``: a run's status, steps and outcome.

The endpoint takes the same ``Authorization: Bearer <key>`` as the HTTP API and answers the same
401 JSON error without one. Tool failures come back as tool results with ``isError`` set, whose
text is the HTTP API's message and whose structured content is its ``{"error": {"code",
"message"}}``, so an agent can read and correct its call.

Built on the SDK's low-level ``Server`` rather than ``MCPServer``: the argument checks and error
texts must match the HTTP API's, which ``MCPServer`` words its own way (and with the caller's
values echoed). Sessions are stateless and answers plain JSON, so any replica behind a load
balancer can take any request.
"""

from integrationhub.api.mcp.endpoint import PATH, McpEndpoint, install, serving
from integrationhub.api.mcp.tools import TOOLS, build_server

__all__ = ["PATH", "TOOLS", "McpEndpoint", "build_server", "install", "serving"]
