"""DPO and reward-model recipes on the tiny model, for LoRA, QLoRA and full weights.

The data says "answers made of digits beat answers made of words"; held-out pairs use other
questions and other answers, so what is measured is the preference, not memorised pairs.
"""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.inference.scoring import RewardScorer
from core.methods import dpo, reward_model
from core.model_store import load_artifact
from tests.core.methods.conftest import rlhf_ctx
from tests.utils.rlhf import HELD_OUT, QUESTIONS, preference_margin, preference_rows

TRAIN = preference_rows(QUESTIONS, seed=0)
VALID = preference_rows(HELD_OUT, seed=1)
LR = {"lora": 3e-3, "qlora": 3e-3, "full": 3e-4}


@pytest.mark.parametrize("adapter", ["lora", "qlora", "full"])
def test_dpo_raises_the_held_out_preference_margin(adapter, tiny_model, tmp_path):
    method = {
        "type": "dpo",
        "dpo": {
            "hyperparameters": {
                "n_epochs": 3,
                "batch_size": 4,
                "learning_rate": LR[adapter],
                "beta": 0.1,
            }
        },
    }
    ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, TRAIN, VALID, adapter=adapter)

    result = dpo.run(ctx)

    events = reporter.metrics_events
    assert [e["step"] for e in events] == list(range(1, 10))
    for key in (
        "train_loss",
        "train_rewards_chosen",
        "train_rewards_rejected",
        "train_reward_margin",
        "train_pair_accuracy",
    ):
        assert all(math.isfinite(e[key]) for e in events), key
    assert events[-1]["train_reward_margin"] > events[0]["train_reward_margin"]
    assert result.final_metrics["valid_reward_margin"] > 0
    assert result.hyperparameters["beta"] == 0.1
    assert reporter.resolved_hp == [result.hyperparameters]
    assert not (result.artifact_dir / "ref").exists()  # TRL's frozen reference did not ship

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    before = preference_margin(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer, VALID)
    tuned, _ = load_artifact(tiny_model, result.artifact_dir)
    after = preference_margin(tuned, tokenizer, VALID)
    print(f"DPO {adapter}: held-out log-prob margin {before:.2f} -> {after:.2f}")
    assert after > before + 2.0


@pytest.mark.parametrize("adapter", ["lora", "qlora", "full"])
def test_reward_model_separates_held_out_pairs(adapter, tiny_model, tmp_path):
    method = {
        "type": "reward_model",
        "reward_model": {
            "hyperparameters": {"n_epochs": 4, "batch_size": 4, "learning_rate": LR[adapter]}
        },
    }
    ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, TRAIN, VALID, adapter=adapter)

    result = reward_model.run(ctx)

    assert result.model_task == "reward_model"
    manifest = json.loads((result.artifact_dir / "lathe_adapter.json").read_text())
    assert manifest["task"] == "seq_cls" and manifest["num_labels"] == 1
    assert result.final_metrics["valid_pair_accuracy"] >= 0.9
    assert {"train_pair_accuracy", "train_reward_margin"} <= set(reporter.metrics_events[-1])
    model, tokenizer = load_artifact(tiny_model, result.artifact_dir)
    scorer = RewardScorer(model, tokenizer)
    chosen = scorer.score([r["input"]["messages"] + r["preferred_output"] for r in VALID])
    rejected = scorer.score([r["input"]["messages"] + r["non_preferred_output"] for r in VALID])
    print(f"reward model {adapter}: chosen {chosen} rejected {rejected}")
    assert all(c > r for c, r in zip(chosen, rejected, strict=True))


def test_reward_model_without_validation_reports_training_pair_accuracy(tiny_model, tmp_path):
    method = {
        "type": "reward_model",
        "reward_model": {
            "hyperparameters": {"n_epochs": 1, "batch_size": 4, "learning_rate": 3e-3}
        },
    }
    ctx, _ = rlhf_ctx(tmp_path, tiny_model, method, TRAIN)
    result = reward_model.run(ctx)
    assert "train_pair_accuracy" in result.final_metrics
    assert not any(k.startswith("valid_") for k in result.final_metrics)
