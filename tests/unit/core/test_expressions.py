from __future__ import annotations

import copy
import sys

import pytest

from integrationhub.core import expressions
from integrationhub.errors import ExpressionError, TemplateError

CONTEXT = {
    "parameters": {
        "to": ["a@example.com", "b@example.com"],
        "name": "Ada",
        "n": 3,
        "people": [{"name": "Ada", "active": True}, {"name": "Bob", "active": False}],
    },
    "steps": {"first": {"output": {"id": 42}}, "skipped": {"output": None}},
    "run": {"id": "run-1", "flow_id": "demo"},
}


def evaluate(source: str, context: dict | None = None):
    return expressions.parse(source).evaluate(CONTEXT if context is None else context)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("parameters.to", ["a@example.com", "b@example.com"]),
        ("$parameters.to[1]", "b@example.com"),
        ("parameters.n * 2", 6),
        ("steps.first.output.id", 42),
        ("steps.skipped.output", None),
        ("parameters.nothing.here", None),
        ("parameters.people[active].name", "Ada"),
        ("[parameters.people[active].name]", ["Ada"]),
        ("parameters.people[name = $parameters.name].active", True),
        (
            "{'who': $uppercase(parameters.name), 'count': $count(parameters.to)}",
            {"who": "ADA", "count": 2},
        ),
        ("$join(parameters.to, ', ')", "a@example.com, b@example.com"),
        ("run.id & '/' & run.flow_id", "run-1/demo"),
        ("$match('Order #123', /#(\\d+)/).groups[0]", "123"),
        ("$replace('a-b-c', /-/, '+')", "a+b+c"),
        ("$contains('HELLO', /hello/i)", True),
        ("$distinct(['a', 'b', 'a', {'x': 1}, {'x': 1}])", ["a", "b", {"x": 1}]),
        ("$eval('[1, 2]')", [1, 2]),
        ("null", None),
    ],
)
def test_evaluates_over_the_run_context_as_input_and_as_variables(source, expected):
    assert evaluate(source) == expected


def test_a_result_is_plain_json_not_the_interpreters_sequences():
    result = evaluate("parameters.people.name")

    assert result == ["Ada", "Bob"]
    assert type(result) is list


def test_evaluation_leaves_the_context_as_it_was():
    before = copy.deepcopy(CONTEXT)
    for source in (
        "parameters.people ~> |$|{'active': false}|",
        "$sort(parameters.to, function($a, $b){ $a < $b })",
        "$merge([parameters, {'n': 0}])",
        "$reverse(parameters.to)",
    ):
        evaluate(source)
    assert before == CONTEXT


def test_each_source_is_parsed_once():
    assert expressions.parse("parameters.n + 1") is expressions.parse("parameters.n + 1")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("parameters.", "is invalid: Unexpected end of expression (at character 11)"),
        ("(", "is invalid: Expected ) before end of expression"),
        ("'open", "is invalid: String literal must be terminated"),
        ("$match(x, /(a)\\1/)", "has an invalid regular expression"),
        ("(" * 400 + "1" + ")" * 400, "is nested too deeply"),
        ("x" * (expressions.MAX_SOURCE + 1), "is longer than 20,000 characters"),
        ("   ", "is empty"),
    ],
)
def test_syntax_errors_name_the_expression_and_the_reason(source, reason):
    with pytest.raises(ExpressionError) as raised:
        expressions.parse(source)

    assert reason in raised.value.message
    assert raised.value.message.startswith("JSONata expression")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        # recursion that grows the stack, and recursion the interpreter turns into a loop
        ("($f := function($n){ 1 + $f($n + 1) }; $f(0))", "nested deeper than 100 levels"),
        ("($f := function($n){ $f($n + 1) }; $f(0))", "ran longer than 0.25s"),
        ("$reduce([1..99999], function($a, $b){ $a + $b * 2 })", "ran longer than 0.25s"),
        # strings doubled until they are huge, and arrays or strings asked for in one go
        (
            "($f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $f('ab', 40))",
            "built a string longer than 1,000,000 characters",
        ),
        ("[1..10000000]", "built an array or object of more than 100,000 entries"),
        ("$pad('', 2000000000)", "$pad to more than 1,000,000 characters"),
        ("($s := $pad('', 900000, 'x'); $join([$s, $s]))", "$join to more than"),
        ("($s := $pad('', 900000, 'x'); $s & [1..50].$s)", "longer than 1,000,000 characters"),
        ("($s := $pad('', 900000, 'x'); $string([1..50].$s))", "$string of more than"),
        ("$replace($pad('', 900000, 'a'), 'a', 'bb')", "$replace to more than"),
        ("$eval($pad('', 30000, '1'))", "$eval of more than 20,000 characters"),
        # a bound met inside $eval, whose errors the interpreter wraps in its own
        ("$eval('[1..200000]')", "stopped: built an array or object of more than 100,000"),
        ("$power(2, 5000)", "failed: (34, 'Numerical result out of range')"),
        (
            "($f := function($n){ $n * $n }; $f($f($f($f($f($f($f($f($f(99))))))))))",
            "Number out of range: inf",
        ),
        # results that are too big, too deep, or not data at all
        ("($s := $pad('', 600000, 'x'); [$s, $s])", "result larger than 1,000,000 characters"),
        ("function($x){ $x }", "not JSON data"),
        ("/abc/", "not JSON data"),
    ],
)
def test_hostile_expressions_are_stopped_within_their_bounds(source, reason):
    with pytest.raises(ExpressionError) as raised:
        evaluate(source)

    assert reason in raised.value.message
    assert sys.getrecursionlimit() < 10_000  # the library's own limit was not left behind


def test_a_callers_string_cannot_make_a_regex_backtrack():
    # Catastrophic for a backtracking engine (2**40 paths); RE2 answers in linear time.
    context = {"parameters": {"text": "a" * 40 + "!"}}

    assert evaluate("$match(parameters.text, /(a+)+b/)", context) is None
    assert evaluate("$contains(parameters.text, /^(a|aa)+$/)", context) is False


def test_a_callers_deeply_nested_data_is_refused_not_a_crash():
    deep: object = "bottom"
    for _ in range(900):
        deep = [deep]
    context = {"parameters": {"deep": deep}}

    with pytest.raises(ExpressionError, match="nested deeper than"):
        evaluate("parameters.deep", context)
    assert evaluate("$count(parameters.deep)", context) == 1


def test_a_callers_large_array_is_deduplicated_in_linear_time():
    context = {"parameters": {"tags": [str(n % 50_000) for n in range(100_000)]}}

    assert evaluate("$count($distinct(parameters.tags))", context) == 50_000


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$error('stop here')", "failed: stop here"),
        ("'a' - 1", "failed: The left side of the - operator must evaluate to a number"),
        ("1 / 0", "failed:"),
    ],
)
def test_runtime_errors_name_the_expression(source, message):
    with pytest.raises(ExpressionError) as raised:
        evaluate(source)

    assert raised.value.message.startswith(f"JSONata expression {source!r} ")
    assert message in raised.value.message


def test_render_replaces_expressions_and_templates_at_any_depth():
    value = {
        "to": {"$jsonata": "parameters.to"},
        "subject": "Hello {{ parameters.name }}",
        "list": [{"$jsonata": "parameters.n + 1"}, "{{ steps.first.output.id }}", 7],
        "nested": {"inner": {"$jsonata": "$count(parameters.people)"}},
        "text with braces": "{ not a template }",
    }

    assert expressions.render(value, CONTEXT) == {
        "to": ["a@example.com", "b@example.com"],
        "subject": "Hello Ada",
        "list": [4, 42, 7],
        "nested": {"inner": 2},
        "text with braces": "{ not a template }",
    }


def test_render_names_where_a_failing_expression_is():
    value = {"a": [1, {"b": {"$jsonata": "$error('no')"}}]}

    with pytest.raises(ExpressionError) as raised:
        expressions.render(value, CONTEXT, ("input",))

    assert raised.value.message.startswith("input.a.1.b: JSONata expression")


def test_an_expression_is_never_read_as_a_template():
    value = {"v": {"$jsonata": "{'a': {'b': 1}}.a.b & '{{ x }}'"}}

    expressions.check(value)
    assert expressions.render(value, CONTEXT) == {"v": "1{{ x }}"}


@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        ({"v": {"$jsonata": "a +"}}, ExpressionError, "v: JSONata expression 'a +' is invalid"),
        ({"v": [{"$jsonata": 3}]}, ExpressionError, "v.0: $jsonata must be the only key"),
        ({"v": {"$jsonata": "a", "b": 1}}, ExpressionError, "must be the only key"),
        ({"v": "{{ unclosed "}, TemplateError, "invalid"),
    ],
)
def test_check_finds_broken_expressions_and_templates(value, error, reason):
    with pytest.raises(error) as raised:
        expressions.check(value)

    assert reason in raised.value.message


def test_expressions_in_lists_each_with_where_it_is():
    value = {"a": {"$jsonata": "1"}, "b": [{"c": {"$jsonata": "2"}}], "d": "x"}

    found = [(loc, node[expressions.KEY]) for loc, node in expressions.expressions_in(value)]

    assert found == [(("a",), "1"), (("b", 0, "c"), "2")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        ("", False),
        ([], False),
        ({}, False),
        ([False, 0], False),
        (True, True),
        (1, True),
        ("no", True),
        ([0, 1], True),
        ({"a": None}, True),
    ],
)
def test_truthy_follows_jsonata_boolean(value, expected):
    assert expressions.truthy(value) is expected
