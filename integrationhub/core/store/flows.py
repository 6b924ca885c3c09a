"""Flow definitions: listed, read (parsed once per distinct text), created or replaced, and
deleted."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from integrationhub.core.schema import flows, utcnow
from integrationhub.core.store import statements
from integrationhub.core.store.connection import StoreConnection, transaction
from integrationhub.core.store.rows import _parsed_flow
from integrationhub.errors import FlowNotFound
from integrationhub.models.flow import Flow

__all__ = ["FlowsMixin"]


class FlowsMixin(StoreConnection):
    @transaction
    def list_flows(self, conn: sa.Connection) -> list[Flow]:
        definitions = conn.scalars(
            sa.select(sa.cast(flows.c.definition, sa.Text)).order_by(flows.c.id)
        )
        return [_parsed_flow(definition) for definition in definitions]

    @transaction
    def get_flow(self, conn: sa.Connection, flow_id: str) -> Flow:
        definition = conn.scalar(statements.flow_definition, {"p_flow_id": flow_id})
        if definition is None:
            raise FlowNotFound(flow_id)
        return _parsed_flow(definition)

    @transaction
    def put_flow(self, conn: sa.Connection, flow: Flow) -> bool:
        """Create or replace; True when it was created."""
        now = utcnow()
        definition = flow.model_dump(mode="json")
        result = conn.execute(
            flows.update()
            .where(flows.c.id == flow.id)
            .values(definition=definition, updated_at=now)
        )
        if result.rowcount == 1:
            return False
        try:
            with conn.begin_nested():
                conn.execute(
                    flows.insert().values(
                        id=flow.id, definition=definition, created_at=now, updated_at=now
                    )
                )
        except IntegrityError:  # created by another replica in between: replace it
            conn.execute(flows.update().where(flows.c.id == flow.id).values(definition=definition))
            return False
        return True

    @transaction
    def delete_flow(self, conn: sa.Connection, flow_id: str) -> None:
        result = conn.execute(flows.delete().where(flows.c.id == flow_id))
        if result.rowcount != 1:
            raise FlowNotFound(flow_id)
