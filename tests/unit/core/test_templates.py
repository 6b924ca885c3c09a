from __future__ import annotations

import pytest

from integrationhub.core import templates
from integrationhub.errors import TemplateError

CONTEXT = {
    "parameters": {"to": ["a@example.com", "b@example.com"], "name": "Ada", "n": 3},
    "steps": {"first": {"output": {"id": 42}}},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ parameters.to }}", ["a@example.com", "b@example.com"]),
        ("{{ parameters.n + 1 }}", 4),
        ("Hello {{ parameters.name }}!", "Hello Ada!"),
        ("{{ steps.first.output.id }}", 42),
        ("no template here", "no template here"),
        ({"nested": ["{{ parameters.name | upper }}", 7]}, {"nested": ["ADA", 7]}),
    ],
)
def test_renders_values_keeping_the_type_of_single_expressions(source, expected):
    assert templates.render(source, CONTEXT) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ parameters.name.__class__ }}",
        "{{ lipsum.__globals__ }}",
        "{% for x in range(10**9) %}{% endfor %}",
        "{{ 'a' * 10**9 }}",
        "{{ 2 ** 100000 }}",
        "{{ parameters.to.append('x') }}",
    ],
)
def test_templates_reaching_python_internals_or_exhausting_memory_fail(source):
    with pytest.raises(TemplateError):
        templates.render(source, CONTEXT)
    assert CONTEXT["parameters"]["to"] == ["a@example.com", "b@example.com"]


def test_undefined_name_is_an_error_naming_it():
    with pytest.raises(TemplateError, match="nope"):
        templates.render("{{ nope }}", CONTEXT)


def test_syntax_error_is_found_by_check_before_any_run():
    with pytest.raises(TemplateError, match="invalid"):
        templates.check({"a": ["ok", "{{ unclosed "]})
