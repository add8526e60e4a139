"""core.methods.classification's pieces: label order, accuracy / macro-F1, label checks.
(Training MiniLM end to end is tests/api/test_classification.py.)"""

from __future__ import annotations

import pytest

from core.data.examples import LabeledText
from core.jobspec.job import JobCreate
from core.jobspec.recipe import SpecError, TrainingContext
from core.methods import classification
from tests.core.training.conftest import RecordingReporter


def test_labels_order_numerically_when_they_are_integers() -> None:
    assert classification.label_order(["10", "2", "-1", "2"]) == ["-1", "2", "10"]
    assert classification.label_order(["spam", "ham", "eggs"]) == ["eggs", "ham", "spam"]


def test_accuracy_and_macro_f1() -> None:
    # class 0: tp 2, predicted 3, actual 2 → F1 0.8; class 1: tp 1, predicted 1, actual 2 →
    # F1 2/3; class 2 never occurs nor is predicted → left out of the mean.
    predicted = [0, 0, 0, 1]
    actual = [0, 0, 1, 1]
    metrics = classification.classification_metrics(predicted, actual, n_classes=3)
    assert metrics["label_accuracy"] == 0.75
    assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)


@pytest.mark.parametrize(
    "field, param", [("valid_examples", "validation_file"), ("test_examples", "data.test_split")]
)
def test_a_validation_or_test_label_missing_from_training_fails_the_job(
    tmp_path, field, param
) -> None:
    spec = JobCreate.model_validate(
        {
            "model": "minilm",
            "training_file": "file-x",
            "method": {"type": "classification"},
        }
    )
    ctx = TrainingContext(
        job_id="ftjob-x",
        spec=spec,
        seed=1,
        base_model_path=tmp_path,  # never loaded
        train_examples=[LabeledText("good", "pos"), LabeledText("bad", "neg")],
        **{"valid_examples": [], field: [LabeledText("so-so", "neutral")]},
        output_dir=tmp_path / "artifact",
        work_dir=tmp_path,
        device="cpu",
        reporter=RecordingReporter(tmp_path / "stored"),
    )
    with pytest.raises(SpecError, match=r"\['neutral'\] never occur") as exc:
        classification.run(ctx)
    assert exc.value.param == param


def test_packing_and_generation_metrics_are_refused_for_classification() -> None:
    for hp in ({"packing": True}, {"evaluation_metrics": ["bleu"]}):
        with pytest.raises(ValueError, match="do not apply to classification"):
            JobCreate.model_validate(
                {
                    "model": "minilm",
                    "training_file": "file-x",
                    "method": {"type": "classification", "classification": {"hyperparameters": hp}},
                }
            )
