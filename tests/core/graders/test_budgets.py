"""Graders within time and size budgets: catastrophic regexes time out (in JSON schemas too),
deep or huge specs are refused when parsed, a slow row scores 0 and a slow job fails."""

from __future__ import annotations

import re
import time

import pytest
from pydantic import ValidationError

from core.graders import (
    GraderError,
    GradingBudget,
    GradingBudgetExceeded,
    check_item,
    make_reward_fn,
    parse_grader,
)
from core.graders.formula import FormulaError, parse_formula
from core.graders.similarity import similarity

OUT = "{{sample.output_text}}"
EVIL = "^(a|a)*$"  # exponential on `regex` too: it must time out
VICTIM = "a" * 40 + "!"  # Python's re would take longer than the universe has left


def schema_grader(schema: dict) -> dict:
    return {"type": "json_schema", "name": "js", "input": OUT, "schema": schema}


def regex_grader(pattern: str = EVIL) -> dict:
    return {"type": "regex", "name": "rx", "input": OUT, "pattern": pattern}


def timed(fn, *args):
    """The value and the CPU seconds it took (what budgets count; wall time on a loaded test
    machine says little)."""
    start = time.thread_time()
    value = fn(*args)
    return value, time.thread_time() - start


@pytest.mark.parametrize(
    ("schema", "sample"),
    [
        ({"type": "string", "pattern": EVIL}, f'"{VICTIM}"'),
        ({"type": "object", "patternProperties": {EVIL: {"type": "string"}}}, f'{{"{VICTIM}": 1}}'),
        (
            {"type": "object", "patternProperties": {EVIL: {}}, "additionalProperties": False},
            f'{{"{VICTIM}": 1}}',
        ),
    ],
)
def test_catastrophic_schema_regex_times_out_and_scores_zero(schema, sample):
    score = make_reward_fn(parse_grader(schema_grader(schema)), GradingBudget(row_s=2))
    [value], seconds = timed(score, [sample], [{}])
    assert value == 0.0 and seconds < 1  # one regex timeout (0.25 s), not a hang


def test_the_issue_pattern_is_answered_at_once():
    """`^(a+)+$` hung the worker on Python's re; the regex engine answers it correctly."""
    grader = parse_grader(schema_grader({"type": "string", "pattern": "^(a+)+$"}))
    values, seconds = timed(make_reward_fn(grader), [f'"{"a" * 10_000}!"', '"aaaa"'], [{}, {}])
    assert values == [0.0, 1.0] and seconds < 1


def test_schema_regexes_still_match():
    grader = parse_grader(
        schema_grader(
            {
                "type": "object",
                "properties": {"id": {"type": "string", "pattern": "^[a-z]+-[0-9]+$"}},
                "patternProperties": {"^x-": {"type": "integer"}},
                "additionalProperties": False,
            }
        )
    )
    score = make_reward_fn(grader)
    assert score(['{"id": "ab-12", "x-n": 3}', '{"id": "AB"}', '{"y": 1}'], [{}] * 3) == [
        1.0,
        0.0,
        0.0,
    ]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"pattern": "("}, "invalid regex"),
        ({"pattern": "a" * 1001}, "longer than 1000"),
        ({"$ref": "https://example.com/s.json"}, "local '$ref'"),
        ({"patternProperties": {"a": {}}, "unevaluatedProperties": False}, "may not combine"),
        ({"enum": ["x" * 200_000]}, "larger than 100000 bytes"),
    ],
)
def test_schema_limits_at_parse_time(schema, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse_grader(schema_grader(schema))


def test_deep_schema_is_refused_not_a_recursion_error():
    schema: dict = {"type": "string"}
    for _ in range(2000):
        schema = {"items": schema}
    with pytest.raises(ValidationError, match="nests deeper than 32"):
        parse_grader(schema_grader(schema))


def test_deeply_nested_instance_scores_zero():
    recursive = schema_grader({"items": {"$ref": "#"}})
    score = make_reward_fn(parse_grader(recursive))
    assert score(["[" * 900 + "]" * 900, "[[]]"], [{}, {}]) == [0.0, 1.0]


def multi(depth: int) -> dict:
    grader: dict = {
        "type": "string_check",
        "name": "leaf",
        "input": OUT,
        "reference": "x",
        "operation": "eq",
    }
    for level in range(depth):
        grader = {
            "type": "multi",
            "name": f"m{level}",
            "graders": {"g": grader},
            "calculate_output": "g",
        }
    return grader


def test_400_deep_multi_is_a_validation_error_naming_the_limit():
    with pytest.raises(ValidationError, match="nest deeper than 8 levels"):
        parse_grader(multi(400))
    assert parse_grader(multi(7)).score("x", {}) == 1.0


def test_total_grader_count_is_capped():
    leaf = multi(0)
    wide = {
        "type": "multi",
        "name": "w",
        "graders": {f"m{i}": multi(0) | {"name": f"m{i}"} for i in range(2)},
        "calculate_output": "m0 + m1",
    }
    for i in range(2):
        wide["graders"][f"m{i}"] = {
            "type": "multi",
            "name": f"m{i}",
            "graders": {f"g{j}": leaf for j in range(32)},
            "calculate_output": "g0",
        }
    with pytest.raises(ValidationError, match="more than 64 graders"):
        parse_grader(wide)


def test_formula_nesting_is_bounded():
    with pytest.raises(FormulaError, match="deeper than 50"):
        parse_formula("+".join(["a"] * 200), {"a"})
    parse_formula("+".join(["a"] * 40), {"a"})


def test_a_row_over_its_budget_scores_zero_and_is_counted():
    budget = GradingBudget(row_s=0.05, job_s=60)
    grader = parse_grader(regex_grader())  # each search may time out at 0.25 s: cut to 0.05
    score = make_reward_fn(grader, budget)
    values, seconds = timed(score, [VICTIM, "aaa"], [{}, {}])
    assert values == [0.0, 1.0] and seconds < 1
    assert (budget.rows, budget.overruns) == (2, 1)


def test_multi_stops_between_sub_graders_once_the_row_budget_is_spent():
    graders = {f"r{i}": regex_grader() | {"name": f"r{i}"} for i in range(20)}
    spec = {"type": "multi", "name": "m", "graders": graders, "calculate_output": "r0"}
    budget = GradingBudget(row_s=0.3, job_s=60)
    [value], seconds = timed(make_reward_fn(parse_grader(spec), budget), [VICTIM], [{}])
    assert value == 0.0 and budget.overruns == 1 and seconds < 1.5  # not 20 x 0.25 s


def test_the_job_budget_fails_the_job():
    budget = GradingBudget(row_s=0.05, job_s=0.2)
    score = make_reward_fn(parse_grader(regex_grader()), budget)
    with pytest.raises(GradingBudgetExceeded, match="LATHE_GRADER_JOB_BUDGET_S"):
        for _ in range(20):
            score([VICTIM], [{}])
    assert budget.rows < 10


def test_rouge_l_input_is_capped():
    text = " ".join(f"w{i % 97}" for i in range(20_000))
    value, seconds = timed(similarity, "rouge_l", text, text[::-1])
    assert 0.0 <= value <= 1.0 and seconds < 3


def test_check_item_renders_templates_without_scoring():
    grader = parse_grader(regex_grader() | {"input": "{{item.text}}"})
    check_item(grader, {"text": VICTIM})  # no search runs: instant
    with pytest.raises(GraderError, match="item has no value at 'text'"):
        check_item(grader, {})
