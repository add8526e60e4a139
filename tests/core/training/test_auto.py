from __future__ import annotations

import pytest

from core.jobspec.job import SupervisedHyperparameters
from core.jobspec.recipe import SpecError
from core.training.auto import auto_epochs, resolve, with_steps


def test_auto_epochs_follow_openai_bounds():
    assert auto_epochs(10) == 10  # 100 examples seen at least
    assert auto_epochs(1) == 25  # capped
    assert auto_epochs(1000) == 3
    assert auto_epochs(20_000) == 1


def test_explicit_values_win_and_multiplier_scales_default():
    hp = resolve(SupervisedHyperparameters(n_epochs=2, learning_rate_multiplier=0.5), 50, "lora", 3)
    assert hp["n_epochs"] == 2 and hp["learning_rate"] == 1e-4 and hp["seed"] == 3
    hp = resolve(SupervisedHyperparameters(learning_rate=0.01), 50, "full", 3)
    assert hp["learning_rate"] == 0.01


def test_new_knobs_resolve_to_documented_defaults():
    hp = resolve(SupervisedHyperparameters(), 50, "lora", 3, has_validation=True)
    assert hp["eval_interval"] == "epoch" and hp["checkpoint_interval"] == "auto"
    assert hp["early_stopping"] is None and hp["gradient_checkpointing"] is False
    assert hp["mixed_precision"] == "no" and hp["evaluation_metrics"] == []
    assert resolve(SupervisedHyperparameters(), 50, "lora", 3)["eval_interval"] is None
    hp = resolve(SupervisedHyperparameters(early_stopping=3), 50, "lora", 3, has_validation=True)
    assert hp["early_stopping"] == {"patience": 3, "min_delta": 0.0}


def test_intervals_become_steps():
    hp = {"n_epochs": 3, "eval_interval": "epoch", "checkpoint_interval": "auto"}
    assert with_steps(hp, 7) == {**hp, "eval_interval": 7, "checkpoint_interval": 7}
    many = {"n_epochs": 40, "eval_interval": None, "checkpoint_interval": "auto"}
    assert with_steps(many, 2)["checkpoint_interval"] == 8  # at most 10 checkpoints
    assert with_steps({**many, "checkpoint_interval": "epoch"}, 2)["checkpoint_interval"] == 2
    assert with_steps({**many, "checkpoint_interval": 5}, 2)["checkpoint_interval"] == 5


def test_what_cannot_run_fails_naming_the_field():
    with pytest.raises(SpecError) as exc:
        resolve(SupervisedHyperparameters(mixed_precision="fp16"), 50, "lora", 3, device="cpu")
    assert exc.value.param.endswith(".mixed_precision")
    assert exc.value.code == "unsupported_on_worker"
    for field, value in (
        ("early_stopping", 2),
        ("eval_interval", 5),
        ("evaluation_metrics", ["rouge_l"]),
    ):
        with pytest.raises(SpecError, match="needs validation examples") as exc:
            resolve(SupervisedHyperparameters(**{field: value}), 50, "lora", 3)
        assert exc.value.param.endswith(f".{field}")
