"""Distillation end to end in production mode with the openai client's `extra_body`: a teacher
fine-tuned to a known task by a supervised job, a fresh student distilled from its `ft:` model
(the worker merges the teacher's adapter), and the teacher checks made at job creation."""

from __future__ import annotations

import openai
import pytest

from tests.utils.distill import (
    LORA,
    STUDENT_HP,
    TEACHER_HP,
    TRAIN_QUESTIONS,
    VALID_QUESTIONS,
    task_rows,
)
from tests.utils.flows import wait_job
from tests.utils.rlhf import write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distill")
    client = stack.client()

    def upload(name: str, rows: list[dict]) -> str:
        path = write_jsonl(tmp / name, rows)
        return client.files.create(file=path.open("rb"), purpose="fine-tune").id

    return upload("train.jsonl", task_rows(TRAIN_QUESTIONS)), upload(
        "valid.jsonl", task_rows(VALID_QUESTIONS)
    )


def create(client, files, method: dict, model: str = "tiny-llama"):
    train, valid = files
    return client.fine_tuning.jobs.create(
        model=model,
        training_file=train,
        validation_file=valid,
        seed=7,
        extra_body={"adapter": LORA, "method": method},
    )


@pytest.fixture(scope="module")
def teacher(stack, files) -> str:
    client = stack.client()
    method = {"type": "supervised", "supervised": {"hyperparameters": TEACHER_HP}}
    job, _ = wait_job(client, create(client, files, method).id)
    assert job.status == "succeeded", job.error
    return job.fine_tuned_model


def distillation(teacher: str, mode: str, **hp) -> dict:
    return {
        "type": "distillation",
        "distillation": {
            "teacher": teacher,
            "mode": mode,
            "hyperparameters": {**STUDENT_HP, **hp},
        },
    }


def test_logits_distillation_from_an_ft_teacher(stack, files, teacher):
    client = stack.client()
    job, _ = wait_job(client, create(client, files, distillation(teacher, "logits")).id)
    assert job.status == "succeeded", job.error
    ev = job.evaluation
    assert ev["tuned"]["valid_loss"] < 0.3 * ev["base"]["valid_loss"]
    assert ev["tuned"]["valid_agreement"] > ev["base"]["valid_agreement"] + 0.3
    assert ev["teacher"]["valid_loss"] < ev["tuned"]["valid_loss"]
    metrics = [
        e.data
        for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data
        if e.type == "metrics"
    ]
    assert any("valid_agreement" in m and "valid_distillation_loss" in m for m in metrics)
    assert job.hyperparameters.mode == "logits" and job.hyperparameters.beta == 0.0
    reply = client.chat.completions.create(
        model=job.fine_tuned_model,
        messages=[{"role": "user", "content": VALID_QUESTIONS[0]}],
        temperature=0,
        max_tokens=12,
    )
    assert "42" in reply.choices[0].message.content


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def test_teacher_errors_name_the_teacher(stack, files, teacher):
    client, other = stack.client(), stack.client(stack.other_key)
    with pytest.raises(openai.NotFoundError) as exc:
        create(client, files, distillation("ft:tiny-llama:nobody:x:ftjob-none", "logits"))
    assert _error(exc.value)["param"] == "method.distillation.teacher"
    with pytest.raises(openai.NotFoundError) as exc:  # another org's model is not there
        create(other, files, distillation(teacher, "logits"))
    assert _error(exc.value)["param"] == "method.distillation.teacher"
    with pytest.raises(openai.BadRequestError) as exc:
        create(client, files, distillation(teacher, "logits", lmbda=0.5))
    assert _error(exc.value)["param"].startswith("method.distillation.hyperparameters")
    with pytest.raises(openai.BadRequestError) as exc:
        train, valid = files
        client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=train,
            extra_body={
                "adapter": {"type": "prompt_tuning"},
                "method": distillation(teacher, "logits"),
            },
        )
    assert _error(exc.value)["param"] == "adapter.type"
    with pytest.raises(openai.BadRequestError) as exc:
        create(client, files, {"type": "distillation"})
    assert _error(exc.value)["param"].startswith("method")
    models = {m.id for m in client.models.list().data}
    if "minilm" in models:  # a BERT's WordPiece vocabulary is not tiny-llama's BPE
        with pytest.raises(openai.BadRequestError) as exc:
            create(client, files, distillation("minilm", "logits"))
        err = _error(exc.value)
        assert err["param"] == "method.distillation.teacher"
        assert err["code"] == "tokenizer_mismatch"
