"""`client.fine_tuning.alpha.graders.run/validate` with the official SDK against the stack."""

from __future__ import annotations

import openai
import pytest

EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference_answer}}",
    "operation": "eq",
}
SIMILAR = {
    "type": "text_similarity",
    "name": "close",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference_answer}}",
    "evaluation_metric": "fuzzy_match",
}
MULTI = {
    "type": "multi",
    "name": "blend",
    "graders": {"exact": EXACT, "close": SIMILAR},
    "calculate_output": "0.5 * exact + 0.5 * close",
}


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def test_run_scores_a_sample_in_openais_shape(stack):
    graders = stack.client().fine_tuning.alpha.graders
    item = {"reference_answer": "Paris"}
    hit = graders.run(grader=EXACT, model_sample="Paris", item=item)
    miss = graders.run(grader=EXACT, model_sample="Rome", item=item)
    assert (hit.reward, miss.reward) == (1.0, 0.0)
    assert hit.metadata.name == "exact" and hit.metadata.type == "string_check"
    assert hit.metadata.execution_time >= 0 and not hit.metadata.errors.invalid_variable_error

    blend = graders.run(grader=MULTI, model_sample="Pariss", item=item)
    assert blend.sub_rewards["exact"] == 0.0 and 0.5 < blend.sub_rewards["close"] < 1.0
    assert blend.reward == pytest.approx(0.5 * blend.sub_rewards["close"])
    assert blend.metadata.type == "multi" and blend.metadata.scores == blend.sub_rewards

    # a row without the templated key: OpenAI's flag and no reward, not an error
    missing = graders.run(grader=EXACT, model_sample="Paris", item={})
    assert missing.reward == 0.0 and missing.metadata.errors.invalid_variable_error


def test_validate_echoes_a_valid_grader(stack):
    graders = stack.client().fine_tuning.alpha.graders
    out = graders.validate(grader=MULTI)
    assert out.grader.type == "multi" and set(out.grader.graders) == {"exact", "close"}
    assert out.grader.calculate_output == MULTI["calculate_output"]


def test_unsupported_and_invalid_graders_are_400s_naming_the_field(stack):
    graders = stack.client().fine_tuning.alpha.graders
    judge = {
        "type": "score_model",
        "name": "judge",
        "model": "tiny-llama",
        "input": [{"role": "user", "content": "Rate {{sample.output_text}}"}],
    }
    nested = {**MULTI, "graders": {"exact": EXACT, "judge": judge}, "calculate_output": "exact"}
    python = {"type": "python", "name": "code", "source": "def grade(s, i): return 1"}
    cases = [
        (judge, "grader.type"),
        (python, "grader.type"),
        (nested, "grader.graders.judge.type"),
        ({**EXACT, "input": "{{oops}}"}, "grader"),
        ({**MULTI, "calculate_output": "__import__('os')"}, "grader"),
    ]
    for grader, param in cases:
        for call, kwargs in (
            (graders.validate, {}),
            (graders.run, {"model_sample": "x", "item": {}}),
        ):
            with pytest.raises(openai.BadRequestError) as exc:
                call(grader=grader, **kwargs)
            assert _error(exc.value)["param"] == param, grader
    with pytest.raises(openai.BadRequestError) as exc:
        graders.run(grader=EXACT, model_sample="x", item=[1, 2])  # type: ignore[arg-type]
    assert _error(exc.value)["param"] == "item"
    with pytest.raises(openai.AuthenticationError):
        stack.client("sk-lathe-wrong").fine_tuning.alpha.graders.validate(grader=EXACT)
