"""Fixtures for every test kind: vendor API doubles that fail the test on any spec violation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doubles.zulip import ZulipDouble


@pytest.fixture(scope="session")
def zulip_server() -> Iterator[ZulipDouble]:
    """One Zulip double for the session: starting uvicorn costs ~0.2 s, resetting nothing."""
    with ZulipDouble() as double:
        yield double


@pytest.fixture
def zulip(zulip_server: ZulipDouble) -> Iterator[ZulipDouble]:
    """The Zulip double, reset for this test. Teardown fails the test if any request (or an
    answer of the double) broke the spec; tests that provoke one ``take_violations()``."""
    zulip_server.reset()
    yield zulip_server
    violations = zulip_server.violations
    zulip_server.reset()
    assert not violations, "Zulip spec violations:\n" + "\n".join(f"  {v}" for v in violations)
