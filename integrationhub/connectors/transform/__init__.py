"""Compute a value for later steps, without calling anything outside.

The step's ``input.value`` is rendered like any input (templates, ``{"$jsonata": ...}``) and
becomes its output ``value``: a step reshapes data once and later steps read
``steps.<id>.output.value``. No credential, no rate limit; safe to repeat.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from integrationhub.connectors.base import BaseConnector, action

__all__ = ["Transform", "TransformConnector", "Transformed"]


class Transform(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Any = Field(description="any JSON value, typically {$jsonata: ...}")


class Transformed(BaseModel):
    value: Any


class TransformConnector(BaseConnector[None]):
    """Compute values from the run context (JSONata or templates) for later steps."""

    name = "transform"

    @action("transform", safe_to_repeat=True, timeout=5)
    async def transform(self, params: Transform) -> Transformed:
        """Output the rendered input value as it is."""
        return Transformed(value=params.value)
