"""The tools agents call, each a thin call into the services the HTTP API uses.

Arguments are checked with the models below and reported as the HTTP API reports a request
body (each field and its rule, never the value); hub errors carry their code and message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp.types as mt
from mcp.server import Server, ServerRequestContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrationhub import errors
from integrationhub.hub import Hub
from integrationhub.models.flow import FlowId

__all__ = ["TOOLS", "DescribeFlow", "GetRun", "ListFlows", "TriggerFlow", "build_server"]


class ListFlows(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DescribeFlow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow_id: FlowId = Field(description="A flow id from list_flows")


class TriggerFlow(BaseModel):
    """The HTTP trigger's shape, plus what its header and query carry."""

    model_config = ConfigDict(extra="forbid")

    flow_id: FlowId = Field(description="A flow id from list_flows")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="The flow's parameters, fitting its parameter schema"
    )
    wait_seconds: float | None = Field(
        None,
        ge=0,
        le=300,
        description="Seconds to wait for the run to finish; the finished run is returned if "
        "it does, its id and status otherwise",
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Same key, same run: a repeated call never starts a second run",
    )


class GetRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=128, description="A run id from a trigger")


ToolFn = Callable[[Hub, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Tool:
    arguments: type[BaseModel]
    call: ToolFn
    description: str
    annotations: mt.ToolAnnotations

    def describe(self, name: str) -> mt.Tool:
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        return mt.Tool(
            name=name,
            description=self.description,
            input_schema=schema,
            annotations=self.annotations,
        )


async def _list_flows(hub: Hub, _: ListFlows) -> dict[str, Any]:
    flows = await hub.catalog.list()
    return {
        "flows": [
            {"id": flow.id, "description": flow.description, "parameters": flow.parameters}
            for flow in flows
        ]
    }


async def _describe_flow(hub: Hub, args: DescribeFlow) -> dict[str, Any]:
    flow = await hub.catalog.get(args.flow_id)
    return flow.model_dump(mode="json", exclude_none=True)


async def _trigger(hub: Hub, args: TriggerFlow) -> dict[str, Any]:
    run, _ = await hub.triggers.trigger(
        flow_id=args.flow_id,
        parameters=args.parameters,
        idempotency_key=args.idempotency_key,
        source="mcp",
    )
    if args.wait_seconds:
        run = await hub.triggers.wait(run.run_id, timeout=args.wait_seconds)
        if run.status.finished:
            return run.model_dump(mode="json")
    return {"run_id": run.run_id, "status": str(run.status)}


async def _get_run(hub: Hub, args: GetRun) -> dict[str, Any]:
    return (await hub.store.get_run(args.run_id)).model_dump(mode="json")


TOOLS: dict[str, _Tool] = {
    "list_flows": _Tool(
        ListFlows,
        _list_flows,
        "List the integration flows this hub can run: each flow's id, what it does, and the "
        "JSON Schema its parameters must fit. Call this first to choose a flow.",
        mt.ToolAnnotations(title="List flows", read_only_hint=True, open_world_hint=False),
    ),
    "describe_flow": _Tool(
        DescribeFlow,
        _describe_flow,
        "Show one flow in full: description, parameter schema and the steps it runs.",
        mt.ToolAnnotations(title="Describe a flow", read_only_hint=True, open_world_hint=False),
    ),
    "trigger_integration_flow": _Tool(
        TriggerFlow,
        _trigger,
        "Run an integration flow (e.g. send an email) with parameters fitting its schema "
        "(see list_flows). Returns the run id and status; with wait_seconds, the finished run "
        "if it ends in time. Pass an idempotency_key when the call may be repeated.",
        mt.ToolAnnotations(
            title="Trigger a flow",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    ),
    "get_run": _Tool(
        GetRun,
        _get_run,
        "Look up a run by id: its status (queued, running, succeeded, failed, cancelled), "
        "each step's outcome, and the error if it failed.",
        mt.ToolAnnotations(title="Get a run", read_only_hint=True, open_world_hint=False),
    ),
}


def _result(data: dict[str, Any], *, is_error: bool = False) -> mt.CallToolResult:
    text = data["error"]["message"] if is_error else json.dumps(data, ensure_ascii=False)
    return mt.CallToolResult(
        content=[mt.TextContent(type="text", text=text)],
        structured_content=data,
        is_error=is_error,
    )


def _error(code: str, message: str) -> mt.CallToolResult:
    return _result({"error": {"code": code, "message": message}}, is_error=True)


def _arguments_message(exc: ValidationError) -> str:
    """Like the HTTP API's validation errors: each field and its rule, never the value."""
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    ]
    return "; ".join(problems[:10])


def build_server(hub_of: Callable[[], Hub]) -> Server[Any]:
    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        return mt.ListToolsResult(tools=[tool.describe(name) for name, tool in TOOLS.items()])

    async def call_tool(
        _ctx: ServerRequestContext[Any], params: mt.CallToolRequestParams
    ) -> mt.CallToolResult:
        tool = TOOLS.get(params.name)
        if tool is None:
            return _error(
                "unknown_tool", f"unknown tool {params.name!r}; known: {', '.join(TOOLS)}"
            )
        try:
            arguments = tool.arguments.model_validate(params.arguments or {})
        except ValidationError as exc:
            return _error("validation_error", _arguments_message(exc))
        try:
            return _result(await tool.call(hub_of(), arguments))
        except errors.IntegrationHubError as exc:
            return _error(exc.code, exc.message)

    return Server(
        "integrationhub",
        version="0.1.0",
        title="IntegrationHub",
        instructions="Run integration flows (email, chat, issues) through IntegrationHub: "
        "list_flows to choose one, trigger_integration_flow to run it, get_run to follow it.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
