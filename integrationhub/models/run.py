"""Runs as the API shows them, and the requests that create them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from integrationhub.models.flow import FlowId

__all__ = [
    "RunAccepted",
    "RunEvent",
    "RunPublic",
    "RunStatus",
    "StepPublic",
    "StepStatus",
    "TriggerRequest",
]


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled})


class StepStatus(StrEnum):
    pending = "pending"
    # The call is under way: its side effect may or may not have happened yet.
    sending = "sending"
    # The call returned: its side effect happened ("sent").
    succeeded = "succeeded"
    failed = "failed"
    # Its `when` was falsy: not run, its output null.
    skipped = "skipped"


class TriggerParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)


class TriggerRequest(TriggerParameters):
    """The agent tool's exact shape: ``{"flow_id": ..., "parameters": {...}}``."""

    flow_id: FlowId


class RunAccepted(BaseModel):
    run_id: str
    status: RunStatus


class StepPublic(BaseModel):
    id: str
    status: StepStatus
    attempts: int
    output: dict[str, Any] | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


class RunEvent(BaseModel):
    """One entry of a run's history."""

    at: datetime
    event: str
    step_id: str | None
    detail: str | None


class RunPublic(BaseModel):
    run_id: str
    flow_id: str
    status: RunStatus
    parameters: dict[str, Any]
    steps: list[StepPublic]
    error: str | None
    deliveries: int = Field(description="how many times a worker took the run up")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
