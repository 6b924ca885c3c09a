"""Where flows come from: built-in files, a flows directory, and the flows API (the store).

A flow stored through the API takes precedence over a file with the same id, so a built-in
flow can be adjusted without a release; deleting the stored copy brings the file back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from integrationhub.connectors.registry import Registry
from integrationhub.core import schemas
from integrationhub.core.store import Store
from integrationhub.errors import FlowInvalid, FlowNotFound, FlowReadOnly, ParametersInvalid
from integrationhub.models.flow import Flow, FlowPublic

__all__ = ["BUILTIN_FLOWS", "Catalog", "load_flow_file", "parse_flow", "validate_parameters"]

BUILTIN_FLOWS = Path(__file__).resolve().parent.parent / "flows"


def parse_flow(data: Any, *, origin: str) -> Flow:
    try:
        return Flow.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'flow'}: {err['msg']}"
            for err in exc.errors()
        )
        raise FlowInvalid(f"{origin}: {details}") from None


def load_flow_file(path: Path) -> Flow:
    try:
        data = (
            yaml.safe_load(path.read_text())
            if path.suffix in {".yaml", ".yml"}
            else json.loads(path.read_text())
        )
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise FlowInvalid(f"{path}: {exc}") from None
    return parse_flow(data, origin=str(path))


def _flow_files(directory: Path) -> Iterable[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml", ".json"})


class Catalog:
    def __init__(self, *, store: Store, registry: Registry, flows_dir: Path | None = None) -> None:
        self.store = store
        self.registry = registry
        self.files: dict[str, FlowPublic] = {}
        for directory, source in ((BUILTIN_FLOWS, "builtin"), (flows_dir, "directory")):
            if directory is None:
                continue
            for path in _flow_files(directory):
                flow = load_flow_file(path)
                self.check_actions(flow)
                self.files[flow.id] = _public(flow, source)

    def check_actions(self, flow: Flow) -> None:
        for step in flow.steps:
            try:
                self.registry.action(step.action)
            except FlowInvalid as exc:
                raise FlowInvalid(f"flow {flow.id!r}, step {step.id!r}: {exc.message}") from None

    async def get(self, flow_id: str) -> FlowPublic:
        try:
            stored = await self.store.get_flow(flow_id)
        except FlowNotFound:
            if flow_id in self.files:
                return self.files[flow_id]
            raise
        return _public(stored, "api")

    async def list(self) -> list[FlowPublic]:
        flows = dict(self.files)
        for stored in await self.store.list_flows():
            flows[stored.id] = _public(stored, "api")
        return [flows[key] for key in sorted(flows)]

    async def put(self, flow: Flow) -> tuple[FlowPublic, bool]:
        self.check_actions(flow)
        created = await self.store.put_flow(flow)
        return _public(flow, "api"), created

    async def delete(self, flow_id: str) -> None:
        try:
            await self.store.delete_flow(flow_id)
        except FlowNotFound:
            if flow_id in self.files:
                raise FlowReadOnly(
                    f"flow {flow_id!r} comes from a file and cannot be deleted through the API"
                ) from None
            raise


def _public(flow: Flow, source: str) -> FlowPublic:
    # The flow is valid already: validating it again would check its schema and compile its
    # templates on every trigger.
    return FlowPublic.model_construct(**dict(flow), source=source)


def validate_parameters(flow: Flow, parameters: dict[str, Any]) -> None:
    """Raise ParametersInvalid naming the first offending field."""
    problem = schemas.first_error(flow.parameters, parameters)
    if problem is not None:
        path, message = problem
        field = ".".join(map(str, path)) or None
        where = f"parameters.{field}" if field else "parameters"
        raise ParametersInvalid(f"{where}: {message}", field=field)
