"""The ``integrationhub`` command as people and scripts run it: a subprocess talking to a hub
served by uvicorn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.hub import API_KEY, SEED
from tests.support.served import ServedHub
from tests.support.smtp import SmtpSink, start_sink

pytestmark = pytest.mark.integration

COMMAND = Path(sys.executable).parent / "integrationhub"
FLOWS = Path(__file__).resolve().parents[2] / "integrationhub" / "flows"


def cli(
    *args: str,
    served: ServedHub | None = None,
    url: str | None = None,
    key: str | None = API_KEY,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTEGRATIONHUB_")}
    env |= {"COLUMNS": "200", "NO_COLOR": "1"}
    if served is not None or url is not None:
        env["INTEGRATIONHUB_URL"] = url or served.url  # type: ignore[union-attr]
    if key is not None:
        env["INTEGRATIONHUB_API_KEY"] = key
    return subprocess.run(
        [str(COMMAND), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        # No controlling terminal: prompts read standard input, never a developer's tty.
        start_new_session=True,
        check=False,
    )


def together(*invocations: Callable[[], subprocess.CompletedProcess[str]]) -> list[Any]:
    """Run independent invocations at once: each one's start-up is mostly imports."""
    with ThreadPoolExecutor(len(invocations)) as pool:
        return list(pool.map(lambda invoke: invoke(), invocations))


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def parsed(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result).stdout)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


FLOW_YAML = """\
id: {flow_id}
description: Tell someone by email.
parameters:
  type: object
  required: [to]
  properties:
    to: {{type: string}}
    count: {{type: integer}}
steps:
  - id: send
    action: smtp-email
    credential: {credential}
    input:
      to: "{{{{ parameters.to }}}}"
      subject: "count {{{{ parameters.count }}}}"
      body: "<p>hello</p>"
"""


@pytest.fixture
def auth_smtp() -> Iterator[SmtpSink]:
    """An SMTP server that takes mail only after a login with the right password."""
    sink = SmtpSink(users={"cli-user": "s3cret-only-via-stdin"})
    controller = start_sink(sink)
    yield sink
    controller.stop()


def test_flows_apply_list_show_delete(served, tmp_path):
    flow_id = unique("cli-flow")
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW_YAML.format(flow_id=flow_id, credential="smtp-credentials"))

    applied = ok(cli("flows", "apply", str(path), served=served))
    listed, shown = together(
        lambda: cli("flows", "list", "--json", served=served),
        lambda: cli("flows", "show", flow_id, served=served),
    )
    deleted = ok(cli("flows", "delete", flow_id, served=served))
    gone = cli("flows", "show", flow_id, served=served)

    assert f"applied flow {flow_id}" in applied.stdout
    assert {flow["id"]: flow["source"] for flow in parsed(listed)}[flow_id] == "api"
    assert "action: smtp-email" in ok(shown).stdout
    assert f"deleted flow {flow_id}" in deleted.stdout
    assert gone.returncode == 1
    assert gone.stdout == ""
    assert f"flow '{flow_id}' does not exist [flow_not_found]" in gone.stderr


def test_trigger_wait_then_runs_list_and_show(served):
    served.smtp.messages.clear()
    params = [f"--param={key}={value}" for key, value in SEED["parameters"].items()]

    run = parsed(cli("trigger", "send-summary-email", *params, "--wait", "--json", served=served))
    listed, shown = together(
        lambda: cli(
            "runs", "list", "--flow", "send-summary-email", "--limit", "3", "--json",
            served=served,
        ),
        lambda: cli("runs", "show", run["run_id"], served=served),
    )  # fmt: skip
    runs, shown = parsed(listed), ok(shown)

    assert run["status"] == "succeeded"
    assert run["parameters"] == SEED["parameters"]
    assert [m.message["Subject"] for m in served.smtp.messages] == [SEED["parameters"]["subject"]]
    assert runs[0]["run_id"] == run["run_id"]
    assert len(runs) <= 3
    assert run["run_id"] in shown.stdout
    assert "succeeded" in shown.stdout
    assert "send" in shown.stdout


def test_trigger_takes_a_params_file_from_stdin_and_json_values(served):
    flow_id = unique("cli-params")
    with served.http() as http:
        response = http.put(
            f"/api/v1/flows/{flow_id}",
            content=FLOW_YAML.format(flow_id=flow_id, credential="smtp-credentials"),
            headers={"Content-Type": "application/yaml"},
        )
    assert response.status_code == 201, response.text

    accepted = parsed(
        cli(
            "trigger", flow_id, "--params-file", "-", "--param", "count=3", "--json",
            served=served, stdin="to: someone@example.com\ncount: 1\n",
        )
    )  # fmt: skip
    with served.http() as http:
        run = http.get(f"/api/v1/runs/{accepted['run_id']}").json()

    assert accepted["status"] == "queued"
    assert run["parameters"] == {"to": "someone@example.com", "count": 3}


def test_credentials_set_from_stdin_stores_the_secret_without_printing_it(served, auth_smtp):
    secret = auth_smtp.users["cli-user"]
    credential_id, flow_id = unique("cli-smtp"), unique("cli-auth")
    data = {
        "host": "127.0.0.1",
        "port": auth_smtp.port,
        "security": "none",
        "username": "cli-user",
        "password": secret,
        "from_address": "cli@example.org",
    }
    with served.http() as http:
        response = http.put(
            f"/api/v1/flows/{flow_id}",
            content=FLOW_YAML.format(flow_id=flow_id, credential=credential_id),
            headers={"Content-Type": "application/yaml"},
        )
    assert response.status_code == 201, response.text

    stored = cli(
        "credentials", "set", credential_id, "--type", "smtp", "--from-file", "-",
        served=served, stdin=json.dumps(data),
    )  # fmt: skip
    listed, triggered = together(
        lambda: cli("credentials", "list", "--json", served=served),
        lambda: cli(
            "trigger", flow_id, "-p", "to=someone@example.com", "-p", "count=1", "--wait",
            "--json", served=served,
        ),
    )  # fmt: skip
    deleted = cli("credentials", "delete", credential_id, served=served)
    results = [stored, listed, triggered, deleted]

    for result in results:
        ok(result)
        assert secret not in result.stdout + result.stderr
    assert f"credential {credential_id} (smtp) saved" in results[0].stdout
    listed = {meta["id"]: meta for meta in json.loads(results[1].stdout)}
    assert "password" in listed[credential_id]["fields"]
    run = json.loads(results[2].stdout)
    assert run["status"] == "succeeded", run
    (received,) = auth_smtp.messages
    assert received.recipients == ["someone@example.com"]


def test_credentials_set_prompt_asks_each_field_of_the_type(served):
    credential_id = unique("cli-prompted")
    wanted = {
        "host": "127.0.0.1",
        "port": "2525",
        "password": "prompted-secret",
        "security": "none",
        "from_address": "hub@example.org",
    }
    with served.http() as http:
        (smtp,) = [c for c in http.get("/api/v1/connectors").json() if c["name"] == "smtp"]
    # One answer a line, in the order the hub lists the fields; "" skips an optional one.
    answers = "".join(f"{wanted.get(f['name'], '')}\n" for f in smtp["credential_fields"])

    result = ok(
        cli(
            "credentials", "set", credential_id, "--type", "smtp", "--prompt", "--json",
            served=served, stdin=answers,
        )
    )  # fmt: skip

    meta = json.loads(result.stdout)
    assert meta["id"] == credential_id
    assert sorted(meta["fields"]) == sorted(wanted)
    assert "prompted-secret" not in result.stdout + result.stderr
    assert "password" in result.stderr  # the question was asked


def test_a_secret_is_never_taken_from_the_command_line(served):
    result = cli("credentials", "set", "x", "--type", "smtp", served=served)

    assert result.returncode == 2
    assert "--from-file FILE (- for stdin) or --prompt" in result.stderr


def test_connectors_list_as_table_and_json(served):
    as_json, table = together(
        lambda: cli("connectors", "list", "--json", served=served),
        lambda: cli("connectors", "list", served=served),
    )
    connectors, table = parsed(as_json), ok(table)

    assert "smtp" in {c["name"] for c in connectors}
    assert "smtp-email" in table.stdout
    assert "from_address*" in table.stdout


def test_check_passes_good_flows_and_points_at_each_broken_line(tmp_path):
    (tmp_path / "good.yaml").write_text(FLOW_YAML.format(flow_id="good", credential="c"))
    (tmp_path / "bad").mkdir()
    broken = tmp_path / "bad" / "broken.yaml"
    broken.write_text(
        FLOW_YAML.format(flow_id="broken", credential="c")
        .replace("action: smtp-email", "action: smtp-emial")
        .replace("{{ parameters.to }}", "{{ parameters.to ")
    )
    syntax = tmp_path / "bad" / "syntax.yaml"
    syntax.write_text("id: x\nsteps:\n  - id: a\n    action: [unclosed\n")

    good, bad = together(
        lambda: cli("check", str(FLOWS), str(tmp_path / "good.yaml"), "--json"),
        lambda: cli("check", str(tmp_path / "bad")),
    )

    assert parsed(good) == {"files": 2, "problems": []}
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines == [
        f"{broken}:11: steps.0.action: unknown action 'smtp-emial'; known actions: "
        + lines[0].split("known actions: ")[1],
        f"{broken}:14: steps.0.input.to: template '{{{{ parameters.to ' is invalid: "
        "unexpected end of template, expected 'end of print statement'.",
        f"{syntax}:5: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence started on line 4)",
    ]
    assert "smtp-email" in lines[0]
    assert "2 files checked, 3 problems" in bad.stderr


def test_errors_are_clear_and_set_the_exit_code(served, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
        unreachable, wrong_key = together(
            lambda: cli("flows", "list", url=closed, cwd=tmp_path),
            lambda: cli("runs", "list", served=served, key="wrong", cwd=tmp_path),
        )

    assert unreachable.returncode == 3
    assert f"request to the hub at {closed} failed" in unreachable.stderr
    assert wrong_key.returncode == 1
    assert "invalid API key [unauthorized]" in wrong_key.stderr
