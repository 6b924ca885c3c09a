"""``integrationhub check``'s reading of flow files: each problem at its line."""

from __future__ import annotations

import pytest

from integrationhub.cli.check import DocumentError, check_flow, load_document
from integrationhub.cli.runs import parse_params
from integrationhub.connectors.registry import Registry

GOOD = """\
id: good
steps:
  - id: send
    action: smtp-email
    credential: c
    input:
      to: "{{ parameters.to }}"
      subject: hi
      body: x
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_entry_points()


def problems(text: str, registry: Registry, name: str = "flow.yaml") -> list[str]:
    return [str(p) for p in check_flow(load_document(name, text), registry)]


def test_a_good_flow_has_no_problems(registry):
    assert problems(GOOD, registry) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("action: smtp-email", "action: nope"),
            "flow.yaml:4: steps.0.action: unknown action 'nope'",
        ),
        (
            ("      body: x\n", ""),
            "flow.yaml:6: steps.0.input: 'smtp-email' needs the input 'body'",
        ),
        (
            ("body: x", "body: x\n      colour: red"),
            "flow.yaml:10: steps.0.input.colour: 'smtp-email' takes no input",
        ),
        (("credential: c", "credentail: c"), "flow.yaml:5: steps.0.credentail: Extra inputs"),
        (("id: send", "id: 1send"), "flow.yaml:3: steps.0.id: String should match pattern"),
        (("{{ parameters.to }}", "{{ parameters.to "), "flow.yaml:7: steps.0.input.to: template"),
        (("id: good", "id: good\ntrigger: 3"), "flow.yaml:2: trigger: Input should be a valid"),
    ],
)
def test_each_problem_is_reported_at_its_line(registry, change, expected):
    found = problems(GOOD.replace(*change), registry)

    assert len(found) == 1, found
    assert found[0].startswith(expected), found


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("f.yaml", "id: x\nsteps: [\n", "f.yaml:3: invalid YAML: "),
        ("f.yaml", "id: x\n  bad: indent\n", "f.yaml:2: invalid YAML: mapping values"),
        ("f.json", '{"id": "x",\n "steps": [}\n', "f.json:2: invalid JSON: "),
    ],
)
def test_syntax_errors_carry_their_line(name, text, expected):
    with pytest.raises(DocumentError) as raised:
        load_document(name, text)

    assert str(raised.value.problem).startswith(expected)


def test_a_json_flow_is_located_too(registry):
    text = '{\n  "id": "j",\n  "steps": [\n    {"id": "a", "action": "nope"}\n  ]\n}\n'

    assert problems(text, registry, "f.json") == [
        "f.json:4: steps.0.action: unknown action 'nope'; known actions: "
        + ", ".join(sorted(registry.actions))
    ]


def test_param_values_are_json_when_they_parse_else_strings():
    assert parse_params(
        ["n=3", "ok=true", "list=[1, 2]", "to=a@b.c", "empty=", "eq=a=b", 'q="3"'], None
    ) == {"n": 3, "ok": True, "list": [1, 2], "to": "a@b.c", "empty": "", "eq": "a=b", "q": "3"}


JSONATA = """\
id: shaped
steps:
  - id: shape
    action: transform
    when: parameters.go
    input:
      value:
        $jsonata: "parameters.people[active].email"
  - id: send
    action: smtp-email
    credential: c
    for_each: steps.shape.output.value
    concurrency: 2
    input:
      to: "{{ item }}"
      subject:
        $jsonata: "'Hello ' & $string(index)"
      body: x
  - id: computed
    action: smtp-email
    credential: c
    input:
      $jsonata: "{'to': 'a@example.com', 'subject': 's', 'body': 'b'}"
"""


def test_a_flow_with_jsonata_when_and_for_each_has_no_problems(registry):
    assert problems(JSONATA, registry) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("when: parameters.go", "when: parameters.("),
            "flow.yaml:5: steps.0.when: Value error, step 'shape': JSONata expression",
        ),
        (
            ('"parameters.people[active].email"', '"parameters.people[active"'),
            "flow.yaml:8: steps.0.input.value.$jsonata: JSONata expression "
            "'parameters.people[active' is invalid: Expected ] before end of expression",
        ),
        (
            ("for_each: steps.shape.output.value", "for_each: steps.shape.output.value}"),
            "flow.yaml:12: steps.1.for_each: Value error, step 'send': JSONata expression",
        ),
        (
            ("    for_each: steps.shape.output.value\n", ""),
            "flow.yaml:12: steps.1.concurrency: Value error, step 'send': concurrency applies",
        ),
        (
            ("'Hello ' & $string(index)\"", "'Hello {{ ' & \""),
            "flow.yaml:17: steps.1.input.subject.$jsonata: JSONata expression",
        ),
        (
            ("$jsonata: \"{'to'", "$jsonata: \"{'to' +"),
            "flow.yaml:23: steps.2.input.$jsonata: JSONata expression",
        ),
    ],
)
def test_each_jsonata_problem_is_reported_at_its_line(registry, change, expected):
    found = problems(JSONATA.replace(*change), registry)

    assert len(found) == 1, found
    assert found[0].startswith(expected), found
