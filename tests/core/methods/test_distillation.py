"""core.methods.distillation on the tiny model: a teacher fine-tuned to a known task, then a
fresh student distilled from it in each mode. The student's held-out loss on the task falls
and its top-1 agreement with the teacher rises (sequence, logits); on_policy's reverse KL to
the teacher falls."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.adapters import merge_and_save
from core.jobspec.recipe import SpecError
from core.methods import distillation, supervised
from tests.core.methods.conftest import rlhf_ctx
from tests.utils.distill import (
    ANSWER,
    LORA,
    STUDENT_HP,
    TEACHER_HP,
    TRAIN_QUESTIONS,
    VALID_QUESTIONS,
    task_rows,
)

TRAIN, VALID = task_rows(TRAIN_QUESTIONS), task_rows(VALID_QUESTIONS)
WRONG = [
    {"messages": [r["messages"][0], {"role": "assistant", "content": "Maybe."}]} for r in TRAIN
]


@pytest.fixture(scope="module")
def teacher(tiny_model, tmp_path_factory) -> Path:
    """tiny-llama taught the task with a short supervised LoRA run, merged into its weights."""
    root = tmp_path_factory.mktemp("teacher")
    method = {"type": "supervised", "supervised": {"hyperparameters": TEACHER_HP}}
    ctx, _ = rlhf_ctx(root, tiny_model, method, TRAIN, VALID)
    ctx.spec.adapter = ctx.spec.adapter.model_validate(LORA)
    result = supervised.run(ctx)
    assert result.evaluation["tuned"]["valid_loss"] < 0.1  # it knows the task
    merge_and_save(tiny_model, result.artifact_dir, root / "merged")
    return root / "merged"


def distill(tiny_model, teacher, root: Path, mode: str, train=TRAIN, **hp):
    method = {
        "type": "distillation",
        "distillation": {
            "teacher": "ft:tiny-llama:acme:teacher:ftjob-t",
            "mode": mode,
            "hyperparameters": {**STUDENT_HP, **hp},
        },
    }
    ctx, reporter = rlhf_ctx(root, tiny_model, method, train, VALID, teacher_dir=teacher)
    ctx.spec.adapter = ctx.spec.adapter.model_validate(LORA)
    return distillation.run(ctx), reporter


def curve(reporter, key: str) -> list[float]:
    return [e[key] for e in reporter.metrics_events if key in e]


@pytest.mark.parametrize("mode", ["sequence", "logits"])
def test_student_learns_the_task_from_the_teacher(tiny_model, teacher, tmp_path, mode):
    # sequence mode replaces the answers: wrong ones in the file show the student learns the
    # teacher's, not the data's
    train = WRONG if mode == "sequence" else TRAIN
    result, reporter = distill(tiny_model, teacher, tmp_path, mode, train=train)
    ev = result.evaluation
    before, after = ev["base"], ev["tuned"]
    assert after["valid_loss"] < 0.3 * before["valid_loss"]
    assert after["valid_agreement"] > before["valid_agreement"] + 0.3
    assert after["valid_distillation_loss"] < before["valid_distillation_loss"]
    assert ev["teacher"]["valid_loss"] < after["valid_loss"] < before["valid_loss"]
    assert result.hyperparameters["mode"] == mode
    listed = {
        k for k in ("beta", "lmbda", "temperature", "max_new_tokens") if k in result.hyperparameters
    }
    # each mode lists the divergence knobs it uses: sequence only its answers' length
    assert listed == ({"max_new_tokens"} if mode == "sequence" else {"beta"}), (
        result.hyperparameters
    )
    agreement = curve(reporter, "valid_agreement")
    assert len(agreement) == STUDENT_HP["n_epochs"] and agreement[-1] > agreement[0]
    assert (result.artifact_dir / "adapter_model.safetensors").exists()
    if mode == "sequence":
        [(_, data)] = [m for m in reporter.messages if m[0].startswith("The teacher answered")]
        assert data["example"] == ANSWER


def test_on_policy_reverse_kl_falls(tiny_model, teacher, tmp_path):
    result, reporter = distill(
        tiny_model, teacher, tmp_path, "on_policy", max_new_tokens=8, n_epochs=6
    )
    ev = result.evaluation
    assert result.hyperparameters["beta"] == 1.0 and result.hyperparameters["lmbda"] == 1.0
    assert ev["tuned"]["valid_distillation_loss"] < 0.8 * ev["base"]["valid_distillation_loss"]
    assert ev["tuned"]["valid_agreement"] > ev["base"]["valid_agreement"]


def test_a_teacher_with_another_tokenizer_fails_naming_it(tiny_model, tmp_path):
    from core.tiny_model import build_tokenizer

    other = tmp_path / "other"
    other.mkdir()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tiny_model).save_pretrained(other)
    build_tokenizer(vocab_size=300).save_pretrained(other)
    with pytest.raises(SpecError) as err:
        distill(tiny_model, other, tmp_path / "run", "logits")
    assert err.value.param == "method.distillation.teacher"
    assert err.value.code == "tokenizer_mismatch"
