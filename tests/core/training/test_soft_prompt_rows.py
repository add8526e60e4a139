"""Soft prompts (prompt/prefix tuning) train one example per row: "auto" packing resolves to off,
and asking for packing is refused (the soft prompt would precede only a row's first example)."""

from __future__ import annotations

import pytest

from core.jobspec.recipe import SpecError
from core.methods import supervised
from tests.core.training.conftest import make_ctx


def test_packing_with_a_soft_prompt_is_refused(tiny_model, tmp_path) -> None:
    ctx, reporter = make_ctx(
        tmp_path, tiny_model, {"packing": True}, adapter={"type": "prefix_tuning"}
    )
    with pytest.raises(SpecError, match="packing cannot be used with prefix_tuning") as exc:
        supervised.run(ctx)
    assert exc.value.param == "method.supervised.hyperparameters.packing"
    assert not reporter.metrics_events


def test_soft_prompt_trains_unpacked_and_learns(tiny_model, tmp_path) -> None:
    hp = {"n_epochs": 5, "batch_size": 2, "learning_rate": 0.3, "checkpoint_interval": 1000}
    ctx, reporter = make_ctx(
        tmp_path, tiny_model, hp, adapter={"type": "prefix_tuning", "num_virtual_tokens": 8}
    )
    result = supervised.run(ctx)
    assert result.hyperparameters["packing"] is False
    assert [e["step"] for e in reporter.metrics_events] == list(range(1, 11))  # 2 rows a step
    evaluation = result.evaluation
    assert evaluation["tuned"]["valid_loss"] < 0.8 * evaluation["base"]["valid_loss"]
