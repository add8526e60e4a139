"""OpenAI's reinforcement fine-tuning with the SDK's native parameters only (no extra_body),
run on Lathe's GRPO against the real stack."""

from __future__ import annotations

import openai
import pytest

from tests.utils.flows import wait_job
from tests.utils.rlhf import QUESTIONS, write_jsonl

pytestmark = pytest.mark.slow

GRADER = {
    "type": "text_similarity",
    "name": "close_to_reference",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference_answer}}",
    "evaluation_metric": "fuzzy_match",
}
HYPERPARAMETERS = {
    "n_epochs": 1,
    "batch_size": 4,
    "learning_rate_multiplier": 100,
    "compute_multiplier": 0.5,  # 4 completions per prompt
    "eval_interval": 2,
    "eval_samples": 2,
    "reasoning_effort": "low",
}


@pytest.fixture(scope="module")
def prompts(stack, tmp_path_factory) -> str:
    rows = [
        {"messages": [{"role": "user", "content": q}], "reference_answer": "1 2 3"}
        for q in QUESTIONS
    ]
    path = write_jsonl(tmp_path_factory.mktemp("rft") / "rft.jsonl", rows)
    return stack.client().files.create(file=path.open("rb"), purpose="fine-tune").id


def _create(client: openai.OpenAI, training_file: str, reinforcement: dict):
    return client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=training_file,
        seed=7,
        method={"type": "reinforcement", "reinforcement": reinforcement},
    )


def test_rft_job_runs_on_grpo_and_reports_ignored_knobs(stack, prompts):
    client = stack.client()
    created = _create(client, prompts, {"grader": GRADER, "hyperparameters": HYPERPARAMETERS})
    assert created.method.type == "reinforcement"
    assert created.method.reinforcement.hyperparameters.compute_multiplier == 0.5
    job, _ = wait_job(client, created.id, timeout=600)
    assert job.status == "succeeded", (job.error, stack.worker.tail())
    assert job.fine_tuned_model.startswith("ft:tiny-llama:")
    events = list(reversed(client.fine_tuning.jobs.list_events(job.id, limit=100).data))
    metrics = [e.data for e in events if e.type == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2, 3]  # 12 prompts, 4 per step, one epoch
    assert all(0.0 <= m["mean_reward"] <= 1.0 for m in metrics)
    assert any(m["mean_reward"] > 0 for m in metrics)  # fuzzy_match gives partial credit
    ignored = {
        e.data["ignored_hyperparameter"]: e
        for e in events
        if e.data and "ignored_hyperparameter" in e.data
    }
    assert set(ignored) == {"eval_interval", "eval_samples", "reasoning_effort"}
    assert "no meaning for open models" in ignored["reasoning_effort"].message
    assert any("4 completions per prompt" in e.message for e in events)
    assert job.hyperparameters.n_epochs == 1 and job.hyperparameters.batch_size == 4


def test_rft_spec_errors_name_the_field(stack, prompts):
    client = stack.client()
    code = {"type": "python", "name": "code", "source": "def grade(s, i):\n    return 1"}
    cases = [
        ({"grader": code}, "method.reinforcement.grader.type"),  # no sandbox on the stack
        (
            {"grader": GRADER, "hyperparameters": {"compute_multiplier": 100}},
            "method.reinforcement.hyperparameters.compute_multiplier",
        ),
        (
            {"grader": GRADER, "hyperparameters": {"reasoning_effort": "extreme"}},
            "method.reinforcement.hyperparameters.reasoning_effort",
        ),
    ]
    for reinforcement, param in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            _create(client, prompts, reinforcement)
        assert exc.value.response.json()["error"]["param"] == param, reinforcement
