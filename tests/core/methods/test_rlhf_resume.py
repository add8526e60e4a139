"""Every RLHF recipe checkpoints, pauses and resumes like a supervised one.

For each method three runs of the same job on the tiny model: uninterrupted; paused after a
few steps (a checkpoint at the step it stopped on, beside the scheduled ones); resumed from
that checkpoint's resume state. The resumed run reports only the steps after the checkpoint,
keeps the whole history for the results file, and ends where the uninterrupted run ended: on
the CPU with one thread the same state gives the same numbers, so losses and final weights
are compared with a tolerance of 1e-5 (relative) — tight enough that a lost optimizer moment,
a skipped RNG state or a replayed batch fails it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from core.methods import RESUMABLE, dpo, grpo, ppo, reward_model
from core.model_store import load_artifact
from core.training.online import checkpoint_steps
from tests.core.methods.conftest import interrupted, rlhf_ctx
from tests.utils.rlhf import DIGIT_GRADER, HELD_OUT, QUESTIONS, preference_rows, prompt_rows

TOL = 1e-5
PAIRS = preference_rows(QUESTIONS, seed=0)  # 12 pairs: 3 steps an epoch at batch 4
VALID = preference_rows(HELD_OUT, seed=1)
PROMPTS = prompt_rows(QUESTIONS)


def _runs(recipe, tmp: Path, base: Path, method: dict, train: list, stop_after: int, **kw: Any):
    """(uninterrupted, paused, resumed): each a (result, reporter) pair."""
    full_ctx, full_reporter = rlhf_ctx(tmp / "full", base, method, train, **kw)
    full = recipe.run(full_ctx)
    ctx, _ = rlhf_ctx(tmp / "paused", base, method, train, **kw)
    paused_reporter = interrupted(ctx, stop_after)
    paused = recipe.run(ctx)
    state = paused_reporter.checkpoints[-1][2]
    ctx, resumed_reporter = rlhf_ctx(tmp / "resumed", base, method, train, resume_from=state, **kw)
    resumed = recipe.run(ctx)
    return (full, full_reporter), (paused, paused_reporter), (resumed, resumed_reporter)


def _weights(artifact: Path) -> dict[str, torch.Tensor]:
    """The adapter's tensors, or a full model's."""
    name = "adapter_model" if (artifact / "adapter_model.safetensors").exists() else "model"
    return load_file(str(artifact / f"{name}.safetensors"))


def _assert_resumed(runs, total: int, key: str = "train_loss", weights: str = "peft") -> int:
    """The common contract; returns the step the pause saved."""
    (full, full_rep), (paused, paused_rep), (resumed, resumed_rep) = runs
    assert paused.stopped_early and not resumed.stopped_early
    step = paused_rep.checkpoints[-1][0]
    assert 0 < step < total
    assert [e["step"] for e in paused_rep.metrics_events] == list(range(1, step + 1))
    # the resumed run trains and reports only what is left: no step repeats, none is lost
    assert [e["step"] for e in resumed_rep.metrics_events] == list(range(step + 1, total + 1))
    assert [h["step"] for h in resumed.history] == list(range(1, total + 1))
    after = [h[key] for h in full.history if h["step"] > step]
    assert [e[key] for e in resumed_rep.metrics_events] == pytest.approx(after, rel=TOL)
    assert resumed.history[step - 1][key] == pytest.approx(full.history[step - 1][key], rel=TOL)
    full_w, resumed_w = _weights(full.artifact_dir), _weights(resumed.artifact_dir)
    assert full_w.keys() == resumed_w.keys()
    for name, tensor in full_w.items():
        assert torch.allclose(resumed_w[name], tensor, rtol=TOL, atol=1e-7), name
    # the paused checkpoint is an artifact like the final one (no TRL reference inside)
    adapter = paused_rep.checkpoints[-1][1]
    assert json.loads((adapter / "lathe_adapter.json").read_text())["format"] == weights
    assert not (adapter / "ref").exists()
    assert _weights(adapter).keys() == full_w.keys()
    return step


def test_every_method_resumes():
    assert {"supervised", "classification", "dpo", "reward_model", "ppo", "grpo"} <= RESUMABLE


def test_dpo_pauses_and_resumes_where_it_stopped(tiny_model, tmp_path):
    hp = {"n_epochs": 3, "batch_size": 4, "learning_rate": 3e-3, "checkpoint_interval": 3}
    method = {"type": "dpo", "dpo": {"hyperparameters": hp}}
    runs = _runs(dpo, tmp_path, tiny_model, method, PAIRS, stop_after=4, valid=VALID)
    step = _assert_resumed(runs, total=9)
    (full, full_rep), (_, paused_rep), (resumed, resumed_rep) = runs
    assert step == 5  # noticed at the end of step 5, after step 4's event
    assert [c[0] for c in full_rep.checkpoints] == [3, 6, 9]
    assert [c[0] for c in paused_rep.checkpoints] == [3, 5]
    assert [c[0] for c in resumed_rep.checkpoints] == [6, 9]
    # validation once an epoch, inside the step's event, and before the checkpoint of its step
    assert [e["step"] for e in full_rep.metrics_events if "valid_loss" in e] == [3, 6, 9]
    assert [e["step"] for e in resumed_rep.metrics_events if "valid_loss" in e] == [6, 9]
    assert "valid_loss" in full_rep.checkpoints[0][3]
    assert resumed.final_metrics["valid_reward_margin"] == pytest.approx(
        full.final_metrics["valid_reward_margin"], rel=TOL
    )
    assert resumed.hyperparameters["checkpoint_interval"] == 3
    assert resumed.hyperparameters["eval_interval"] == 3  # "epoch", in steps
    state = {p.name for p in paused_rep.checkpoints[-1][2].iterdir()}
    assert {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"} <= state
    model, _ = load_artifact(tiny_model, paused_rep.checkpoints[-1][1])  # servable as is
    assert model is not None


def test_reward_model_pauses_and_resumes_where_it_stopped(tiny_model, tmp_path):
    hp = {"n_epochs": 2, "batch_size": 4, "learning_rate": 3e-3, "checkpoint_interval": 4}
    method = {"type": "reward_model", "reward_model": {"hyperparameters": hp}}
    runs = _runs(reward_model, tmp_path, tiny_model, method, PAIRS, stop_after=1)
    step = _assert_resumed(runs, total=6)
    (full, _), (_, paused_rep), (resumed, resumed_rep) = runs
    assert [c[0] for c in paused_rep.checkpoints] == [step] == [2]
    assert [c[0] for c in resumed_rep.checkpoints] == [4]  # the last step has no interval
    assert resumed.final_metrics["train_pair_accuracy"] == pytest.approx(
        full.final_metrics["train_pair_accuracy"], rel=TOL
    )
    manifest = json.loads((paused_rep.checkpoints[-1][1] / "lathe_adapter.json").read_text())
    assert manifest["task"] == "seq_cls"  # a checkpoint scores like the final reward model


def test_grpo_pauses_and_resumes_where_it_stopped(tiny_model, tmp_path):
    hp = {
        "total_steps": 6,
        "batch_size": 4,
        "num_generations": 2,
        "max_new_tokens": 4,
        "learning_rate": 3e-3,
        "checkpoint_interval": 5,
    }
    method = {"type": "grpo", "grpo": {"grader": DIGIT_GRADER, "hyperparameters": hp}}
    runs = _runs(grpo, tmp_path, tiny_model, method, PROMPTS, stop_after=3)
    step = _assert_resumed(runs, total=6, key="mean_reward")
    (_, full_rep), (_, paused_rep), (_, resumed_rep) = runs
    # 12 prompts, 4 a step: step 4 is inside the second pass, whose order must be the original's
    assert [c[0] for c in full_rep.checkpoints] == [5]
    assert [c[0] for c in paused_rep.checkpoints] == [step] == [4]
    assert [c[0] for c in resumed_rep.checkpoints] == [5]
    for e, f in zip(resumed_rep.metrics_events, full_rep.metrics_events[step:], strict=True):
        assert e["train_loss"] == pytest.approx(f["train_loss"], rel=TOL, abs=1e-7)
        assert e["kl"] == pytest.approx(f["kl"], rel=TOL, abs=1e-7)


PPO_HP = {
    "total_steps": 6,
    "batch_size": 4,
    "mini_batch_size": 2,
    "ppo_epochs": 1,
    "max_new_tokens": 4,
    "temperature": 1.0,
    "learning_rate": 1e-3,
    "checkpoint_interval": 2,
}


def test_ppo_pauses_and_resumes_with_its_value_head(tiny_model, tmp_path):
    method = {"type": "ppo", "ppo": {"grader": DIGIT_GRADER, "hyperparameters": PPO_HP}}
    runs = _runs(ppo, tmp_path, tiny_model, method, PROMPTS, stop_after=3)
    step = _assert_resumed(runs, total=6, key="mean_reward")
    (full, full_rep), (_, paused_rep), (resumed, resumed_rep) = runs
    assert step == 3  # PPO polls before each step: it stops right after step 3's event
    assert [c[0] for c in full_rep.checkpoints] == [2, 4, 6]
    assert [c[0] for c in paused_rep.checkpoints] == [2, 3]
    assert [c[0] for c in resumed_rep.checkpoints] == [4, 6]
    for e, f in zip(resumed_rep.metrics_events, full_rep.metrics_events[step:], strict=True):
        for key in ("train_loss", "value_loss", "kl", "entropy"):
            assert e[key] == pytest.approx(f[key], rel=TOL, abs=1e-7), key
    assert resumed.trained_tokens == full.trained_tokens  # counted over the whole run
    state = {p.name for p in paused_rep.checkpoints[-1][2].iterdir()}
    assert state == {
        "policy.safetensors",
        "value_head.safetensors",
        "optimizer.pt",
        "rng_state.pth",
        "trainer_state.json",
    }
    assert paused_rep.checkpoints[-1][3]["step"] == 3
    assert math.isfinite(paused_rep.checkpoints[-1][3]["train_loss"])


def test_ppo_resumes_full_weights_against_the_same_reference(tiny_model, tmp_path):
    """Full fine-tuning keeps a frozen copy of the start as its reference: a resumed run must
    copy the starting weights, not the checkpoint's, before it loads the checkpoint."""
    hp = {**PPO_HP, "total_steps": 4, "checkpoint_interval": 10, "learning_rate": 1e-4}
    method = {"type": "ppo", "ppo": {"grader": DIGIT_GRADER, "hyperparameters": hp}}
    runs = _runs(ppo, tmp_path, tiny_model, method, PROMPTS, stop_after=2, adapter="full")
    assert _assert_resumed(runs, total=4, key="kl", weights="full") == 2


def test_qlora_dpo_resumes_its_8bit_optimizer_and_bf16_adapter(tiny_model, tmp_path):
    """No comparison with an uninterrupted run here: two fresh QLoRA runs in one process do
    not start from the same adapter (see the report). What a resume must keep: the steps, the
    8-bit AdamW state, and TRL's bf16 adapter, which the trainer's adapter reload casts to fp32."""
    hp = {"n_epochs": 2, "batch_size": 4, "learning_rate": 3e-3, "checkpoint_interval": 10}
    method = {"type": "dpo", "dpo": {"hyperparameters": hp}}
    ctx, _ = rlhf_ctx(tmp_path / "paused", tiny_model, method, PAIRS, adapter="qlora")
    paused = interrupted(ctx, stop_after=1)
    dpo.run(ctx)
    [(step, adapter, state, _)] = paused.checkpoints
    assert step == 2
    optimizer = torch.load(state / "optimizer.pt", weights_only=True)
    assert {s["step"] for s in optimizer["state"].values()} == {2}  # bitsandbytes' own state
    ctx, reporter = rlhf_ctx(
        tmp_path / "resumed", tiny_model, method, PAIRS, adapter="qlora", resume_from=state
    )
    result = dpo.run(ctx)
    assert [e["step"] for e in reporter.metrics_events] == [3, 4, 5, 6]
    assert [h["step"] for h in result.history] == list(range(1, 7))
    assert {t.dtype for t in _weights(adapter).values()} == {torch.bfloat16}
    assert {t.dtype for t in _weights(result.artifact_dir).values()} == {torch.bfloat16}


def test_a_cancelled_ppo_run_saves_nothing_more(tiny_model, tmp_path):
    method = {"type": "ppo", "ppo": {"grader": DIGIT_GRADER, "hyperparameters": PPO_HP}}
    ctx, _ = rlhf_ctx(tmp_path, tiny_model, method, PROMPTS)
    reporter = interrupted(ctx, stop_after=3, pause=False)
    result = ppo.run(ctx)
    assert result.stopped_early
    assert [c[0] for c in reporter.checkpoints] == [2]  # the scheduled one only


def test_a_cancelled_dpo_run_saves_nothing_more(tiny_model, tmp_path):
    hp = {"n_epochs": 1, "batch_size": 4, "learning_rate": 3e-3, "checkpoint_interval": 10}
    ctx, _ = rlhf_ctx(tmp_path, tiny_model, {"type": "dpo", "dpo": {"hyperparameters": hp}}, PAIRS)
    reporter = interrupted(ctx, stop_after=1, pause=False)
    result = dpo.run(ctx)
    assert result.stopped_early and not reporter.checkpoints
    # stopped at step 2's end; a cancelled run reports nothing after the cancel (the step it
    # stops on included), a paused one keeps that step's metrics with its checkpoint
    assert [e["step"] for e in reporter.metrics_events] == [1]


def test_online_checkpoint_intervals_resolve_to_steps():
    hp = {"total_steps": 45, "batch_size": 8}
    assert checkpoint_steps({**hp, "checkpoint_interval": "auto"}, 30) == 5  # a tenth
    assert checkpoint_steps({**hp, "checkpoint_interval": "epoch"}, 30) == 4  # 30 prompts / 8
    assert checkpoint_steps({**hp, "checkpoint_interval": 7}, 30) == 7
    assert checkpoint_steps({"total_steps": 3, "checkpoint_interval": "auto"}, 30) == 1
