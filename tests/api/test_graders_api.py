"""`client.fine_tuning.alpha.graders.run/validate` with the official SDK against the stack:
every grader type OpenAI has, the judges served by the stack's inference service."""

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
JUDGE = {
    "type": "score_model",
    "name": "judge",
    "model": "tiny-llama",
    "input": [
        {"role": "system", "content": "Score the answer from 0 to 10."},
        {"role": "user", "content": [{"type": "input_text", "text": "{{sample.output_text}}"}]},
    ],
    "range": [0, 10],
    "sampling_params": {"max_completions_tokens": 24, "seed": 1},
}
LABEL = {
    "type": "label_model",
    "name": "verdict",
    "model": "tiny-llama",
    "input": [
        {"role": "user", "content": "Is {{sample.output_text}} right? {{item.reference_answer}}"}
    ],
    "labels": ["right", "wrong"],
    "passing_labels": ["right"],
}
PYTHON = {"type": "python", "name": "code", "source": "def grade(sample, item):\n    return 1.0"}


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


def test_every_text_similarity_metric(stack):
    """Each of OpenAI's metrics: identical texts score ~1, unrelated ones lower."""
    graders = stack.client().fine_tuning.alpha.graders
    metrics = ["fuzzy_match", "bleu", "gleu", "meteor", "rouge_l"]
    metrics += [f"rouge_{n}" for n in range(1, 6)]
    if "LATHE_GRADER_EMBEDDING_MODEL" in stack.env:
        metrics.append("cosine")
    reference = "the quick brown fox jumps over the lazy dog"
    for metric in metrics:
        grader = {**SIMILAR, "evaluation_metric": metric}
        same = graders.run(
            grader=grader, model_sample=reference, item={"reference_answer": reference}
        )
        other = graders.run(
            grader=grader,
            model_sample="stock markets closed higher on friday",
            item={"reference_answer": reference},
        )
        assert same.reward == pytest.approx(1.0, abs=0.01), metric
        assert 0.0 <= other.reward < same.reward - 0.2, metric
    # meteor matches stems: a plural is still (nearly) the same sentence
    meteor = graders.run(
        grader={**SIMILAR, "evaluation_metric": "meteor"},
        model_sample="the cats sat on the mat",
        item={"reference_answer": "the cat sat on the mat"},
    )
    assert meteor.reward > 0.9


def test_model_graders_call_the_judge(stack):
    """score_model / label_model: the judge (a model the stack serves) answers under a JSON
    schema, so even the random tiny model gives a parsable score and label."""
    graders = stack.client().fine_tuning.alpha.graders
    item = {"reference_answer": "Paris"}
    scored = graders.run(grader=JUDGE, model_sample="Paris", item=item)
    errors = scored.metadata.errors
    assert not errors.api_model_grader_server_error, errors.api_model_grader_server_error_details
    assert not errors.api_model_grader_parse_error
    assert 0.0 <= scored.reward <= 10.0
    usage = scored.api_model_grader_token_usage_per_model["tiny-llama"]
    assert usage["completion_tokens"] > 0 and scored.metadata.token_usage == usage["total_tokens"]

    labelled = graders.run(grader=LABEL, model_sample="Paris", item=item)
    assert not labelled.metadata.errors.api_model_grader_parse_error
    assert labelled.reward in (0.0, 1.0)

    both = {
        "type": "multi",
        "name": "rft",
        "graders": {"exact": EXACT, "judge": JUDGE},
        "calculate_output": "0.5 * exact + 0.05 * judge",
    }
    out = graders.run(grader=both, model_sample="Paris", item=item)
    assert out.sub_rewards["exact"] == 1.0
    assert out.reward == pytest.approx(0.5 + 0.05 * out.sub_rewards["judge"])

    # reasoning_effort means nothing to an open judge: accepted, reported as ignored
    effort = {**JUDGE, "sampling_params": {"reasoning_effort": "low", "max_completions_tokens": 8}}
    reported = graders.run(grader=effort, model_sample="Paris", item=item)
    assert reported.metadata.to_dict()["ignored"] == ["sampling_params.reasoning_effort"]


def test_validate_echoes_a_valid_grader(stack):
    graders = stack.client().fine_tuning.alpha.graders
    out = graders.validate(grader=MULTI)
    assert out.grader.type == "multi" and set(out.grader.graders) == {"exact", "close"}
    assert out.grader.calculate_output == MULTI["calculate_output"]
    judged = graders.validate(grader=JUDGE)
    assert judged.grader.type == "score_model" and judged.grader.range == [0, 10]


def test_unavailable_and_invalid_graders_are_4xx_naming_the_field(stack):
    graders = stack.client().fine_tuning.alpha.graders
    nested = {**MULTI, "graders": {"exact": EXACT, "code": PYTHON}, "calculate_output": "exact"}
    image = {
        **JUDGE,
        "input": [{"role": "user", "content": {"type": "input_image", "image_url": "x"}}],
    }
    cases = [
        (PYTHON, "grader.type"),  # the stack runs no sandbox
        (nested, "grader.graders.code.type"),
        ({**EXACT, "input": "{{oops}}"}, "grader"),
        ({**MULTI, "calculate_output": "__import__('os')"}, "grader"),
        ({**LABEL, "passing_labels": ["maybe"]}, "grader"),
        (image, "grader"),
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
        graders.validate(grader=PYTHON)
    assert "LATHE_GRADER_PYTHON_SANDBOX" in _error(exc.value)["message"]
    # a judge the organization cannot use is a 404 naming where it is written
    ghost = {**MULTI, "graders": {"exact": EXACT, "j": {**JUDGE, "model": "ft:nope:x::y"}}}
    ghost["calculate_output"] = "exact + j"
    with pytest.raises(openai.NotFoundError) as exc:
        graders.validate(grader=ghost)
    assert _error(exc.value)["param"] == "grader.graders.j.model"
    with pytest.raises(openai.BadRequestError) as exc:
        graders.run(grader=EXACT, model_sample="x", item=[1, 2])  # type: ignore[arg-type]
    assert _error(exc.value)["param"] == "item"
    with pytest.raises(openai.AuthenticationError):
        stack.client("sk-lathe-wrong").fine_tuning.alpha.graders.validate(grader=EXACT)
