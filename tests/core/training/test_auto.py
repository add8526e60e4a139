from __future__ import annotations

from core.jobs.spec import SupervisedHyperparameters
from core.training.auto import auto_epochs, resolve


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
