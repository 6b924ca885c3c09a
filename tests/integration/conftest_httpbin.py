"""The httpbin-like double (tests/doubles/httpbin.py), one per test module, reset per test.

A plain module so a test module can take it in with
``from tests.integration.conftest_httpbin import *``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doubles.httpbin import HttpBin

__all__ = ["httpbin", "httpbin_server"]


@pytest.fixture(scope="module")
def httpbin_server() -> Iterator[HttpBin]:
    with HttpBin() as server:
        yield server


@pytest.fixture
def httpbin(httpbin_server: HttpBin) -> Iterator[HttpBin]:
    httpbin_server.reset()
    yield httpbin_server
    httpbin_server.reset()
