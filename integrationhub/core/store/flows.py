"""Flow definitions: listed, read (parsed once per distinct text), created or replaced, and
deleted."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from integrationhub.core.schema import flows, utcnow
from integrationhub.core.store import statements
from integrationhub.core.store.connection import StoreConnection
from integrationhub.core.store.rows import _parsed_flow
from integrationhub.errors import FlowNotFound
from integrationhub.models.flow import Flow

__all__ = ["FlowsMixin"]


class FlowsMixin(StoreConnection):
    async def list_flows(self) -> list[Flow]:
        async with self.engine.connect() as conn:
            definitions = await conn.scalars(
                sa.select(sa.cast(flows.c.definition, sa.Text)).order_by(flows.c.id)
            )
        return [_parsed_flow(definition) for definition in definitions]

    async def get_flow(self, flow_id: str) -> Flow:
        async with self.engine.connect() as conn:
            definition = await conn.scalar(statements.flow_definition, {"p_flow_id": flow_id})
        if definition is None:
            raise FlowNotFound(flow_id)
        return _parsed_flow(definition)

    async def put_flow(self, flow: Flow) -> bool:
        """Create or replace; True when it was created."""
        now = utcnow()
        definition = flow.model_dump(mode="json")
        async with self.engine.begin() as conn:
            result = await conn.execute(
                flows.update()
                .where(flows.c.id == flow.id)
                .values(definition=definition, updated_at=now)
            )
            if result.rowcount == 1:
                return False
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        flows.insert().values(
                            id=flow.id, definition=definition, created_at=now, updated_at=now
                        )
                    )
            except IntegrityError:  # created by another replica in between: replace it
                await conn.execute(
                    flows.update().where(flows.c.id == flow.id).values(definition=definition)
                )
                return False
        return True

    async def delete_flow(self, flow_id: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(flows.delete().where(flows.c.id == flow_id))
        if result.rowcount != 1:
            raise FlowNotFound(flow_id)
