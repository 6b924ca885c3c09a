"""Runs and flows in SQL (SQLAlchemy; SQLite by default, PostgreSQL at scale).

Every state change that matters is one conditional UPDATE, so it is atomic on both databases
without read-then-write races: a run is claimed only if it is queued or its lease expired, and
only the lease owner may finish it.

The parts: ``connection`` (open, close, check; engine options, SQLite tuning), ``runs`` (runs as
the API sees them: created, read, cancelled, retried, deleted), ``leases`` (runs as workers and
the sweeper handle them: published, claimed under a lease, stepped, finished, released),
``flows``, ``cursors`` (source and schedule cursors), ``rows`` (rows into models, a run's
history) and ``statements`` (the hot path's statements, built once).
"""

from __future__ import annotations

from integrationhub.core.store.cursors import CursorsMixin
from integrationhub.core.store.flows import FlowsMixin
from integrationhub.core.store.leases import ClaimedRun, LeasesMixin, StepOutcome
from integrationhub.core.store.runs import RunsMixin

__all__ = ["ClaimedRun", "StepOutcome", "Store"]


class Store(RunsMixin, LeasesMixin, FlowsMixin, CursorsMixin):
    """The run store: one object over one engine (``Store.open``), its parts in mixins."""
