"""An RFT job (`method.type: reinforcement`, the SDK's native shape) graded by a `multi`
grader over `string_check` + `score_model`, the judge a model the stack's inference service
serves: the training worker calls the judge through the inference service for every
completion, and the rewards are reported as metrics events."""

from __future__ import annotations

import pytest

from tests.utils.flows import wait_job
from tests.utils.rlhf import QUESTIONS, write_jsonl

pytestmark = pytest.mark.slow

GRADER = {
    "type": "multi",
    "name": "exact_and_judged",
    "graders": {
        "exact": {
            "type": "string_check",
            "name": "says_one",
            "input": "{{sample.output_text}}",
            "reference": "{{item.reference_answer}}",
            "operation": "ilike",
        },
        "judge": {
            "type": "score_model",
            "name": "judge",
            "model": "tiny-llama",
            "input": [
                {"role": "system", "content": "Score from 0 to 1 how close it is to 1."},
                {"role": "user", "content": "{{sample.output_text}}"},
            ],
            "sampling_params": {"max_completions_tokens": 12, "seed": 3},
        },
    },
    "calculate_output": "0.5 * exact + 0.5 * judge",
}


def test_rft_job_with_a_judged_multi_grader_trains(stack, tmp_path):
    client = stack.client()
    rows = [
        {"messages": [{"role": "user", "content": q}], "reference_answer": "1"}
        for q in QUESTIONS[:4]
    ]
    path = write_jsonl(tmp_path / "rft.jsonl", rows)
    training = client.files.create(file=path.open("rb"), purpose="fine-tune")
    judged_before = stack.inference_stats()["in_process"]["requests"]
    created = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=training.id,
        seed=5,
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": GRADER,
                "hyperparameters": {
                    "n_epochs": 1,
                    "batch_size": 2,
                    "compute_multiplier": 0.25,  # 2 completions per prompt
                    "max_new_tokens": 8,
                },
            },
        },
    )
    job, _ = wait_job(client, created.id, timeout=600)
    assert job.status == "succeeded", (job.error, stack.worker.tail())
    events = list(reversed(client.fine_tuning.jobs.list_events(job.id, limit=100).data))
    metrics = [e.data for e in events if e.type == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2]  # 4 prompts, 2 per step
    assert all(0.0 <= m["mean_reward"] <= 1.0 for m in metrics)
    failures = [e.message for e in events if e.data and "grader_errors" in e.data]
    assert not failures, failures  # every completion was judged, none scored 0 for an error
    # 2 steps x 2 prompts x 2 completions, each judged through the inference service
    judged = stack.inference_stats()["in_process"]["requests"] - judged_before
    assert judged >= 8, judged
