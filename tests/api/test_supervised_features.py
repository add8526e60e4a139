"""Supervised jobs through the real stack: resolved hyperparameters, validation metrics in the
metrics events, base-vs-tuned evaluation, results files, checkpoints (listed, served, pruned,
fine-tuned further) and failing fast on what the worker cannot do."""

from __future__ import annotations

import csv
import io

import openai
import pytest

from tests.utils.flows import LEARN_ADAPTER, LEARN_HYPERPARAMETERS, wait_job

pytestmark = pytest.mark.slow


def _sft(hyperparameters: dict) -> dict:
    return {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}


@pytest.fixture(scope="module")
def files(capitals):
    return capitals.file, capitals.valid


@pytest.fixture(scope="module")
def trained(capitals):
    """The session's capitals fine-tune (tests/api/conftest.py CAPITALS_HYPERPARAMETERS):
    validated every 5 steps, checkpointed every 10."""
    return capitals.job


def test_job_shows_resolved_hyperparameters_and_how_much_tuning_helped(trained):
    job = trained.to_dict()
    hp = job["hyperparameters"]
    assert hp["n_epochs"] == 40 and hp["eval_interval"] == 5 and hp["checkpoint_interval"] == 10
    assert hp["mixed_precision"] == "no" and hp["early_stopping"] is None
    assert hp["learning_rate"] == 3e-3 and hp["warmup_ratio"] == 0.03
    base, tuned = job["evaluation"]["base"], job["evaluation"]["tuned"]
    assert tuned["valid_loss"] < 0.05 * base["valid_loss"], job["evaluation"]
    assert tuned["valid_mean_token_accuracy"] == 1.0 > base["valid_mean_token_accuracy"]
    assert tuned["rouge_l"] == 1.0 > base["rouge_l"] and tuned["bleu"] > base["bleu"]


def test_metrics_events_carry_validation_and_a_final_evaluation_event(stack, trained):
    events = list(reversed(stack.client().fine_tuning.jobs.list_events(trained.id, limit=100).data))
    metrics = [e.data for e in events if e.type == "metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 41))
    assert [m["step"] for m in metrics if "valid_loss" in m] == list(range(5, 41, 5))
    assert all("valid_mean_token_accuracy" in m for m in metrics if "valid_loss" in m)
    assert "validation loss=" in next(
        e.message for e in events if e.type == "metrics" and e.data["step"] == 5
    )
    [evaluation] = [e for e in events if e.message.startswith("Validation loss")]
    assert evaluation.data["base"]["valid_loss"] > evaluation.data["tuned"]["valid_loss"]
    assert " before → " in evaluation.message and "rouge_l" in evaluation.message


def test_results_are_a_csv_with_validation_columns_and_a_loss_curve(stack, trained, tmp_path):
    client = stack.client()
    csv_id, png_id = trained.result_files
    assert {client.files.retrieve(i).purpose for i in (csv_id, png_id)} == {"fine-tune-results"}
    rows = list(csv.DictReader(io.StringIO(client.files.content(csv_id).text)))
    assert len(rows) == 40
    filled = [int(r["step"]) for r in rows if r["valid_loss"]]
    assert filled == list(range(5, 41, 5))
    assert all(rows[s - 1]["valid_mean_token_accuracy"] for s in filled)
    png = client.files.content(png_id).content
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert client.files.retrieve(png_id).filename == "loss_curve.png"


def test_checkpoints_are_listed_pruned_and_served(stack, trained):
    client = stack.client()
    page = client.fine_tuning.jobs.checkpoints.list(trained.id)
    assert [c.step_number for c in page.data] == [40, 30, 20]  # newest first; step 10 pruned
    for ckpt in page.data:
        assert ckpt.id.startswith("ftckpt_") and ckpt.fine_tuning_job_id == trained.id
        assert ckpt.fine_tuned_model_checkpoint == (
            f"{trained.fine_tuned_model}:ckpt-step-{ckpt.step_number}"
        )
        metrics = ckpt.metrics.to_dict()
        assert metrics["step"] == ckpt.step_number
        assert metrics["full_valid_loss"] == metrics["valid_loss"] > 0
        assert {"train_loss", "train_mean_token_accuracy", "full_valid_mean_token_accuracy"} <= set(
            metrics
        )
    latest = page.data[0].fine_tuned_model_checkpoint
    reply = client.chat.completions.create(
        model=latest,
        temperature=0,
        max_tokens=8,
        messages=[{"role": "user", "content": "What is the capital of Japan?"}],
    )
    assert reply.choices[0].message.content == "Tokyo"
    assert latest not in {m.id for m in client.models.list().data}  # as OpenAI's list
    assert client.models.retrieve(latest).id == latest  # yet retrievable (and served above)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(f"{trained.fine_tuned_model}:ckpt-step-10")


def test_a_checkpoint_can_be_fine_tuned_further(stack, files, trained):
    """The child starts from the parent's adapter: its starting validation loss is the
    checkpoint's, not the base model's."""
    client = stack.client()
    train, valid = files
    ckpt = {c.step_number: c for c in client.fine_tuning.jobs.checkpoints.list(trained.id).data}[20]
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(
            model=ckpt.fine_tuned_model_checkpoint,
            training_file=train.id,
            extra_body={"adapter": {"type": "ia3"}},
        )
    assert exc.value.response.json()["error"]["param"] == "adapter.type"

    job = client.fine_tuning.jobs.create(
        model=ckpt.fine_tuned_model_checkpoint,
        training_file=train.id,
        validation_file=valid.id,
        seed=7,
        extra_body={
            "method": _sft(
                {
                    **LEARN_HYPERPARAMETERS,
                    "n_epochs": 2,
                    "learning_rate": 3e-4,
                    "checkpoint_interval": 1000,
                }
            )
        },
    )
    assert job.model == ckpt.fine_tuned_model_checkpoint
    assert job.to_dict()["adapter"]["r"] == LEARN_ADAPTER["r"]  # the parent's adapter
    done, _ = wait_job(client, job.id)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    assert done.fine_tuned_model.startswith("ft:tiny-llama:acme::")
    evaluation = done.to_dict()["evaluation"]
    start = ckpt.metrics.to_dict()["full_valid_loss"]
    assert evaluation["base"]["valid_loss"] == pytest.approx(start, rel=1e-3)
    # Two epochs from the untuned base would leave it near the base's loss; from the parent's
    # adapter it stays far below (a fresh optimizer may still wobble it a little).
    root_base = trained.to_dict()["evaluation"]["base"]["valid_loss"]
    assert evaluation["tuned"]["valid_loss"] < 0.1 * root_base


def test_mixed_precision_the_worker_cannot_do_fails_the_job(stack, files):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA worker can train in bf16")
    client = stack.client()
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=files[0].id,
        extra_body={"method": _sft({"mixed_precision": "bf16"})},
    )
    done, _ = wait_job(client, job.id)
    assert done.status == "failed"
    assert done.error.code == "unsupported_on_worker"
    assert done.error.param == "method.supervised.hyperparameters.mixed_precision"
    assert "needs a CUDA GPU" in done.error.message
