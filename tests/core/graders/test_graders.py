"""Each grader type and operation, template handling and spec-time rejections."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from core.graders import (
    Grader,
    GraderError,
    GraderSpec,
    JsonSchemaGrader,
    grade,
    make_reward_fn,
    parse_grader,
)

OUT = "{{sample.output_text}}"


def string_check(operation: str, reference: str = "{{item.reference_answer}}") -> dict:
    return {
        "type": "string_check",
        "name": "sc",
        "input": OUT,
        "reference": reference,
        "operation": operation,
    }


@pytest.mark.parametrize(
    ("operation", "sample", "expected"),
    [
        ("eq", "Paris", 1.0),
        ("eq", "paris", 0.0),
        ("ne", "Rome", 1.0),
        ("ne", "Paris", 0.0),
        ("like", "It is Paris.", 1.0),
        ("like", "It is PARIS.", 0.0),
        ("ilike", "It is PARIS.", 1.0),
        ("ilike", "It is Rome.", 0.0),
    ],
)
def test_string_check_operations(operation: str, sample: str, expected: float) -> None:
    grader = parse_grader(string_check(operation))
    assert grade(grader, sample, {"reference_answer": "Paris"}) == expected


def test_literal_reference_and_nested_item_paths() -> None:
    assert grade(parse_grader(string_check("eq", "yes")), "yes", {}) == 1.0
    grader = parse_grader(string_check("eq", "{{ item.answer.city }}-{{item.ids.1}}"))
    assert grade(grader, "Paris-7", {"answer": {"city": "Paris"}, "ids": [3, 7]}) == 1.0
    assert grader.item_keys() == {"answer.city", "ids.1"}


def test_unknown_placeholder_is_rejected_at_spec_time() -> None:
    for bad in ("{{sample.output_json}}", "{{reference}}", "{{item}}", "{{item.a + 1}}"):
        with pytest.raises(ValidationError, match="unsupported template variable"):
            parse_grader(string_check("eq", bad))


def test_missing_item_key_raises_grader_error() -> None:
    with pytest.raises(GraderError, match="reference_answer"):
        grade(parse_grader(string_check("eq")), "x", {"other": 1})


@pytest.mark.parametrize(
    ("metric", "sample", "reference", "low", "high"),
    [
        ("fuzzy_match", "the capital is paris", "The capital is Paris", 1.0, 1.0),
        ("fuzzy_match", "hello world", "goodbye moon", 0.0, 0.5),
        ("bleu", "the cat sat on the mat", "the cat sat on the mat", 0.999, 1.0),
        ("bleu", "a b c d", "w x y z", 0.0, 0.01),
        ("gleu", "the cat sat", "the cat sat", 1.0, 1.0),
        ("rouge_1", "the cat", "the cat sat", 0.79, 0.81),  # P=1, R=2/3 -> F=0.8
        ("rouge_2", "the cat", "the cat sat", 0.66, 0.67),  # P=1, R=1/2 -> F=2/3
        ("rouge_l", "cat the", "the cat", 0.49, 0.51),
        ("rouge_5", "one two three four five", "one two three four five", 1.0, 1.0),
    ],
)
def test_text_similarity(metric: str, sample: str, reference: str, low: float, high: float) -> None:
    grader = parse_grader(
        {
            "type": "text_similarity",
            "name": "ts",
            "input": OUT,
            "reference": reference,
            "evaluation_metric": metric,
        }
    )
    assert low <= grade(grader, sample, {}) <= high


def test_cosine_needs_the_operators_encoder() -> None:
    """cosine parses (it is OpenAI's), but without LATHE_GRADER_EMBEDDING_MODEL it is a 400
    naming the metric; meteor scores stems without WordNet's data."""
    from core.errors import InvalidRequest
    from core.graders.check import parse_or_invalid
    from core.settings import Settings

    spec = {
        "type": "text_similarity",
        "name": "t",
        "input": OUT,
        "reference": "x",
        "evaluation_metric": "cosine",
    }
    parse_grader(spec)
    with pytest.raises(InvalidRequest, match="LATHE_GRADER_EMBEDDING_MODEL") as exc:
        parse_or_invalid(spec, "grader", Settings(graders={"embedding_model": None}))
    assert exc.value.param == "grader.evaluation_metric"
    meteor = parse_grader({**spec, "evaluation_metric": "meteor", "reference": "the cat sat"})
    assert grade(meteor, "the cats sat", {}) > 0.9
    assert grade(meteor, "dogs ran away", {}) == 0.0


def test_regex_grader_and_flags() -> None:
    spec = {"type": "regex", "name": "r", "input": OUT, "pattern": r"answer is \d+"}
    assert grade(parse_grader(spec), "The answer is 42.", {}) == 1.0
    assert grade(parse_grader(spec), "The ANSWER is 42.", {}) == 0.0
    assert grade(parse_grader({**spec, "flags": "i"}), "The ANSWER is 42.", {}) == 1.0


@pytest.mark.parametrize("pattern", ["(unclosed", "a{2,1}", "*x", "x" * 1001])
def test_bad_regex_is_a_validation_error(pattern: str) -> None:
    with pytest.raises(ValidationError):
        parse_grader({"type": "regex", "name": "r", "input": OUT, "pattern": pattern})


def test_bad_regex_flags_are_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_grader({"type": "regex", "name": "r", "input": OUT, "pattern": "x", "flags": "g"})


def test_catastrophic_regex_times_out_to_zero() -> None:
    grader = parse_grader({"type": "regex", "name": "r", "input": OUT, "pattern": r"(a|aa)+$"})
    # Backtracking (a|aa)+$ over 60 a's would take ~10^12 steps: a score at all means the
    # regex's timeout cut it (pytest-timeout turns a hang into a failure).
    assert grade(grader, "a" * 60 + "!", {}) == 0.0


def test_json_schema_grader() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    grader = parse_grader({"type": "json_schema", "name": "j", "input": OUT, "schema": schema})
    assert isinstance(grader, JsonSchemaGrader)
    assert grade(grader, '{"n": 3}', {}) == 1.0
    assert grade(grader, '{"n": "3"}', {}) == 0.0
    assert grade(grader, "not json", {}) == 0.0
    assert grader.model_dump(by_alias=True)["schema"] == schema


@pytest.mark.parametrize(
    "schema", [{"type": "no-such-type"}, {"$ref": "https://example.com/s.json"}]
)
def test_json_schema_rejects_bad_schemas(schema: dict) -> None:
    with pytest.raises(ValidationError):
        parse_grader({"type": "json_schema", "name": "j", "input": OUT, "schema": schema})


def multi(formula: str) -> dict:
    return {
        "type": "multi",
        "name": "m",
        "graders": {
            "exact": string_check("eq"),
            "has_digit": {"type": "regex", "name": "d", "input": OUT, "pattern": r"\d"},
        },
        "calculate_output": formula,
    }


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("0.5 * exact + 0.5 * has_digit", 0.5),
        ("(exact + has_digit) / 2", 0.5),
        ("max(exact, has_digit)", 1.0),
        ("min(exact, has_digit)", 0.0),
        ("abs(exact - has_digit)", 1.0),
        ("-exact + 2 ^ 2", 4.0),
        ("has_digit / exact", 0.0),  # division by zero scores 0, never crashes training
    ],
)
def test_multi_formula(formula: str, expected: float) -> None:
    grader = parse_grader(multi(formula))
    assert grade(grader, "42", {"reference_answer": "Paris"}) == pytest.approx(expected)


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os').system('true')",
        "exact.__class__",
        "exact[0]",
        "open('x')",
        "eval('1')",
        "(lambda: 1)()",
        "max(*exact)",
        "abs(x=exact)",
        "unknown + exact",
        "'a' + 'b'",
        "exact if has_digit else 0",
        "exact < has_digit",
        "exact % 2",
        "[exact]",
        "exact; 1",
        "(" * 300 + "1" + ")" * 300,
    ],
)
def test_multi_rejects_unsafe_formulas(formula: str) -> None:
    with pytest.raises(ValidationError, match="calculate_output"):
        parse_grader(multi(formula))


def test_python_graders_are_refused_without_the_sandbox() -> None:
    from core.errors import InvalidRequest
    from core.graders.check import parse_or_invalid
    from core.settings import Settings

    code = {"type": "python", "name": "p", "source": "def grade(s, i):\n    return 1"}
    nested = {"type": "multi", "name": "m", "graders": {"p": code}, "calculate_output": "p"}
    with pytest.raises(InvalidRequest, match="LATHE_GRADER_PYTHON_SANDBOX") as exc:
        parse_or_invalid(nested, "method.grpo.grader", Settings(graders={"python_sandbox": False}))
    assert exc.value.param == "method.grpo.grader.graders.p.type"
    with pytest.raises(ValidationError, match="grade"):
        parse_grader({**code, "source": "def other(s, i):\n    return 1"})


def test_grader_embeds_in_other_specs_and_round_trips() -> None:
    class Method(BaseModel):
        grader: Grader

    spec = multi("0.5 * exact + 0.5 * has_digit")
    method = Method.model_validate({"grader": spec})
    again = GraderSpec.validate_python(method.grader.model_dump(by_alias=True))
    assert grade(again, "Paris", {"reference_answer": "Paris"}) == 0.5
    assert again.item_keys() == {"reference_answer"}


def test_make_reward_fn_batches() -> None:
    reward_fn = make_reward_fn(parse_grader(string_check("ilike")))
    items = [{"reference_answer": "paris"}, {"reference_answer": "rome"}]
    assert reward_fn(["Paris!", "Paris!"], items) == [1.0, 0.0]
    with pytest.raises(ValueError, match="items"):
        reward_fn(["a"], items)
