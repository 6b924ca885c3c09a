"""The example connector of docs/connectors.md, a distribution of its own
(examples/connector-example), found by the hub through its entry point and run in a flow."""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.httpbin import HttpBin
from tests.integration.conftest_httpbin import *  # noqa: F403
from tests.support.hub import RunningHub

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "connector-example"


@pytest.fixture(scope="module", autouse=True)
def example_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The example on ``sys.path`` the way ``pip install -e`` puts it there, without touching
    the venv: its sources, and a dist-info holding the entry points its pyproject declares."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site = tmp_path_factory.mktemp("site-packages")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in items.items())
            for group, items in project["entry-points"].items()
        )
    )
    paths = [str(site), str(EXAMPLE / "src")]
    sys.path[:0] = paths
    importlib.invalidate_caches()
    yield
    for path in paths:
        sys.path.remove(path)
    importlib.invalidate_caches()


async def test_a_separately_packaged_connector_is_listed_and_runs_in_a_flow(
    hub: RunningHub, httpbin: HttpBin
):
    connectors = {c["name"]: c for c in (await hub.client.get("/api/v1/connectors")).json()}
    example = connectors["example"]
    assert [a["name"] for a in example["actions"]] == ["example-echo"]
    (credential_type,) = example["credential_types"]
    assert credential_type["type"] == "example"
    assert credential_type["auth"] == {"scheme": "bearer"}
    fields = {f["name"]: f["secret"] for f in credential_type["fields"]}
    assert fields == {"rate_limit": False, "base_url": False, "token": True}

    put = await hub.client.put(
        "/api/v1/credentials/example-api",
        json={"type": "example", "data": {"base_url": httpbin.url, "token": "tok"}},
    )
    assert put.status_code == 201, put.text
    flow = {
        "id": "echo",
        "steps": [
            {
                "id": "echo",
                "action": "example-echo",
                "credential": "example-api",
                "input": {"message": "{{ parameters.message }}"},
            }
        ],
        "parameters": {"type": "object", "properties": {"message": {"type": "string"}}},
    }
    assert (await hub.client.put("/api/v1/flows/echo", json=flow)).status_code in (200, 201)

    answer = await hub.client.post(
        "/api/v1/flows/echo/trigger?wait=20", json={"parameters": {"message": "hello"}}
    )

    run = answer.json()
    assert run["status"] == "succeeded", run
    assert run["steps"][0]["output"] == {"message": "hello", "signed_in": True}
    assert httpbin.requests[0].headers["authorization"] == "Bearer tok"
