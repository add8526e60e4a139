"""core.methods.supervised end to end on the tiny model: the evaluation schedule, metrics
events, checkpoints, base-vs-tuned evaluation, seeding, resume and early stopping."""

from __future__ import annotations

import json

import pytest

from core.jobspec.recipe import SpecError
from core.methods import supervised
from tests.core.training.conftest import capitals, make_ctx

# 4 examples, batch 4: one step per epoch. Enough steps to memorise the answers.
HP = {
    "n_epochs": 24,
    "batch_size": 4,
    "learning_rate": 3e-3,
    "packing": False,
    "eval_interval": 4,
    "checkpoint_interval": 8,
    "evaluation_metrics": ["rouge_l", "bleu"],
}


@pytest.fixture(scope="module")
def first(tiny_model, tmp_path_factory):
    ctx, reporter = make_ctx(tmp_path_factory.mktemp("first"), tiny_model, HP)
    return ctx, reporter, supervised.run(ctx)


def test_hyperparameters_resolve_before_the_first_step(first):
    _, reporter, result = first
    assert reporter.order[0] == "resolved" and reporter.order.count("resolved") == 1
    [hp] = reporter.resolved_hp
    assert hp == result.hyperparameters
    assert hp["eval_interval"] == 4 and hp["checkpoint_interval"] == 8
    assert hp["mixed_precision"] == "no" and hp["gradient_checkpointing"] is False
    assert hp["early_stopping"] is None and hp["seed"] == 7


def test_metrics_events_carry_validation_on_eval_steps(first):
    _, reporter, result = first
    events = reporter.metrics_events
    assert [e["step"] for e in events] == list(range(1, 25))
    assert all(e["total_steps"] == 24 for e in events)
    with_valid = [e["step"] for e in events if "valid_loss" in e]
    assert with_valid == [4, 8, 12, 16, 20, 24]
    for e in events:
        assert {"train_loss", "train_mean_token_accuracy", "train_perplexity"} <= set(e)
        if "valid_loss" in e:
            assert {"valid_mean_token_accuracy", "valid_perplexity"} <= set(e)
    assert not [text for text, _ in reporter.messages if "validation loss=" in text]
    assert result.history == events  # the results file is what the events said


def test_checkpoints_store_adapter_metrics_and_resume_state(first):
    _, reporter, _ = first
    assert [c[0] for c in reporter.checkpoints] == [8, 16, 24]
    for step, adapter, state, metrics in reporter.checkpoints:
        assert json.loads((adapter / "lathe_adapter.json").read_text())["adapter_type"] == "lora"
        assert {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"} <= {
            p.name for p in state.iterdir()
        }
        assert metrics["step"] == step
        assert metrics["full_valid_loss"] == metrics["valid_loss"]
        assert set(metrics) == {
            "step",
            "train_loss",
            "train_mean_token_accuracy",
            "valid_loss",
            "valid_mean_token_accuracy",
            "full_valid_loss",
            "full_valid_mean_token_accuracy",
        }
    losses = [c[3]["valid_loss"] for c in reporter.checkpoints]
    assert losses == sorted(losses, reverse=True)


def test_evaluation_compares_base_and_tuned(first):
    _, _, result = first
    base, tuned = result.evaluation["base"], result.evaluation["tuned"]
    assert result.evaluation["valid_examples"] == result.evaluation["generation_examples"] == 4
    assert tuned["valid_loss"] < 0.1 * base["valid_loss"], (base, tuned)
    assert tuned["valid_mean_token_accuracy"] > base["valid_mean_token_accuracy"]
    assert tuned["rouge_l"] == 1.0 and base["rouge_l"] < 0.5
    assert tuned["bleu"] > base["bleu"]
    assert result.final_metrics["valid_loss"] == tuned["valid_loss"]


def test_same_seed_gives_the_same_losses(first, tiny_model, tmp_path):
    _, _, result = first
    ctx, _ = make_ctx(tmp_path, tiny_model, {**HP, "evaluation_metrics": []})
    again = supervised.run(ctx)
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in result.history]
    assert again.evaluation["tuned"]["valid_loss"] == result.evaluation["tuned"]["valid_loss"]


def test_resume_from_a_checkpoint_reaches_the_same_end(first, tiny_model, tmp_path):
    """A job that died after its step-8 checkpoint resumes from it (weights, optimizer,
    scheduler, RNG) and ends where the uninterrupted run ended."""
    _, reporter, result = first
    state = reporter.checkpoints[0][2]
    ctx, resumed_reporter = make_ctx(
        tmp_path, tiny_model, {**HP, "evaluation_metrics": []}, resume_from=state
    )
    resumed = supervised.run(ctx)
    steps = [e["step"] for e in resumed_reporter.metrics_events]
    assert steps == list(range(9, 25))  # only the remaining steps are trained and reported
    assert [h["step"] for h in resumed.history] == list(range(1, 25))  # the results file is whole
    assert [c[0] for c in resumed_reporter.checkpoints] == [16, 24]
    # Bit-identical on the CPU: the same batches in the same order from the same state.
    assert resumed.history[-1]["train_loss"] == result.history[-1]["train_loss"]
    assert resumed.evaluation["tuned"]["valid_loss"] == result.evaluation["tuned"]["valid_loss"]


def test_early_stopping_on_validation_loss(tiny_model, tmp_path):
    """Validation answers contradict the training ones: the better the model learns, the worse
    its validation loss, so patience runs out long before the last epoch."""
    wrong = capitals({"France": "Lyon", "Japan": "Osaka", "Italy": "Milan", "Spain": "Seville"})
    hp = {
        "n_epochs": 30,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "eval_interval": 1,
        "early_stopping": {"patience": 2, "min_delta": 0.0},
        "gradient_checkpointing": True,
        "checkpoint_interval": 1000,
    }
    ctx, reporter = make_ctx(tmp_path, tiny_model, hp, valid=wrong)
    result = supervised.run(ctx)
    stopped = result.final_metrics["early_stopped_at_step"]
    assert stopped < 30 and result.history[-1]["step"] == stopped
    assert [text for text, _ in reporter.messages if text.startswith("Early stopping at step")]
    assert result.hyperparameters["gradient_checkpointing"] is True
    assert result.hyperparameters["early_stopping"] == {"patience": 2, "min_delta": 0.0}
    assert reporter.checkpoints == []


def test_mixed_precision_on_cpu_fails_fast(tiny_model, tmp_path):
    ctx, reporter = make_ctx(tmp_path, tiny_model, {**HP, "mixed_precision": "bf16"})
    with pytest.raises(SpecError, match="needs a CUDA GPU") as exc:
        supervised.run(ctx)
    assert exc.value.param == "method.supervised.hyperparameters.mixed_precision"
    assert exc.value.code == "unsupported_on_worker" and not reporter.messages


def test_continuing_loads_the_parents_adapter(first, tiny_model, tmp_path):
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    from core.training.warm_start import load_model

    ctx, _, _ = first
    child, _ = make_ctx(tmp_path, tiny_model, HP, parent_artifact_dir=ctx.output_dir)
    model, _ = load_model(child)
    parent = load_file(str(ctx.output_dir / "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    assert set(loaded) == set(parent)
    assert all(torch.equal(loaded[k], parent[k]) for k in parent)
    assert any(p.requires_grad for p in model.parameters())

    other, _ = make_ctx(
        tmp_path / "r4",
        tiny_model,
        HP,
        parent_artifact_dir=ctx.output_dir,
        adapter={"type": "lora", "r": 4},
    )
    with pytest.raises(SpecError, match="does not fit"):
        load_model(other)


def test_every_knob_reaches_the_trainer(tiny_model, tmp_path):
    """SFTConfig's own defaults (bf16 and gradient checkpointing on) must never leak in."""
    from transformers import AutoTokenizer

    from core.jobspec.job import SupervisedHyperparameters
    from core.training.auto import resolve

    hp = resolve(
        SupervisedHyperparameters(
            lr_scheduler="cosine",
            warmup_ratio=0.1,
            weight_decay=0.01,
            gradient_accumulation_steps=2,
            max_seq_length=64,
            packing=False,
            seed=11,
            learning_rate_multiplier=0.5,
        ),
        4,
        "lora",
        7,
    )
    ctx, _ = make_ctx(tmp_path, tiny_model, {})
    args = supervised.trainer_config(ctx, hp)
    assert args.lr_scheduler_type.value == "cosine" and args.warmup_steps == 0.1
    assert args.learning_rate == 1e-4 and args.gradient_accumulation_steps == 2
    assert (args.seed, args.data_seed, args.packing, args.max_length) == (11, 11, False, None)
    assert not (args.bf16 or args.fp16 or args.gradient_checkpointing)
    assert supervised.trainer_config(ctx, {**hp, "packing": True}).max_length == 64
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    data, _, truncated, skipped = supervised._dataset(tokenizer, capitals(), 12)
    assert truncated == 4 and skipped == 4 and len(data) == 0  # answers cut off: nothing to learn


def test_the_learning_rate_follows_warmup_and_schedule(first):
    _, reporter, _ = first
    rates = [e["learning_rate"] for e in reporter.metrics_events]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(3e-3)  # 3% of 24 steps: 1 warmup step
    assert rates[1:] == sorted(rates[1:], reverse=True) and rates[-1] < 2e-4  # linear decay
