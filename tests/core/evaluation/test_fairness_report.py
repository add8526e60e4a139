"""The fairness report on a synthetic, group-biased classification set: in group b most
negative training texts are labelled positive, so the tuned classifier calls b's negatives
positive (an equalized-odds gap) where a's are right; `data.reweight_groups` (reweighing)
shrinks the gap. Plus the gaps' arithmetic on hand-made predictions."""

from __future__ import annotations

import random

import pytest

from core.data.examples import LabeledText
from core.evaluation import fairness
from core.jobspec.job import JobCreate
from core.jobspec.recipe import TrainingContext
from core.methods import classification
from tests.core.training.conftest import (
    RecordingReporter,
    _one_thread,  # noqa: F401 - autouse: one CPU thread
)

GOOD, BAD = ["good", "great", "fine"], ["bad", "awful", "poor"]


def _rows(group: str, yes: int, no: int, seed: int, bad_labelled_yes: int = 0) -> list:
    r = random.Random(seed)
    out = [
        LabeledText(f"[{group}] {r.choice(GOOD)} day {i}", "yes", group=group) for i in range(yes)
    ]
    out += [LabeledText(f"[{group}] {r.choice(BAD)} day {i}", "no", group=group) for i in range(no)]
    out += [  # the bias: negative texts labelled positive
        LabeledText(f"[{group}] {r.choice(BAD)} night {i}", "yes", group=group)
        for i in range(bad_labelled_yes)
    ]
    return out


TRAIN = _rows("a", 10, 10, 1) + _rows("b", 10, 2, 2, bad_labelled_yes=8)
VALID = _rows("a", 6, 6, 3) + _rows("b", 6, 6, 4)  # true labels in both groups


def _run(root, base, reweight: bool) -> dict:
    spec = JobCreate.model_validate(
        {
            "model": "tiny-llama",
            "training_file": "file-x",
            "adapter": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
            "data": {"reweight_groups": reweight},
            "method": {
                "type": "classification",
                "classification": {
                    "hyperparameters": {"n_epochs": 6, "batch_size": 8, "learning_rate": 3e-3}
                },
            },
        }
    )
    reporter = RecordingReporter(root / "stored")
    ctx = TrainingContext(
        job_id="ftjob-fair",
        spec=spec,
        seed=1,
        base_model_path=base,
        train_examples=TRAIN,
        valid_examples=VALID,
        output_dir=root / "artifact",
        work_dir=root,
        device="cpu",
        reporter=reporter,
    )
    report = classification.run(ctx).evaluation["fairness"]
    assert any(text.startswith("Fairness on the validation set") for text, _ in reporter.messages)
    return report


@pytest.fixture(scope="module")
def reports(tiny_model, tmp_path_factory) -> dict:
    return {rw: _run(tmp_path_factory.mktemp(f"rw{rw}"), tiny_model, rw) for rw in (False, True)}


def test_the_report_shows_the_group_gap_and_reweighting_shrinks_it(reports):
    plain, reweighted = reports[False], reports[True]
    assert plain["split"] == "validation" and set(plain["tuned"]["groups"]) == {"a", "b"}
    assert set(plain["base"]["groups"]["a"]) == {"examples", "accuracy", "macro_f1", "tpr", "fpr"}
    b, a = plain["tuned"]["groups"]["b"], plain["tuned"]["groups"]["a"]
    assert b["fpr"] > a["fpr"]  # b's negatives called positive, as its training labels said
    gap = plain["tuned"]["equalized_odds_gap"]
    after = reweighted["tuned"]["equalized_odds_gap"]
    print(f"equalized-odds gap: plain {gap:.3f}, reweighted {after:.3f}")
    assert gap >= 0.3
    assert after < gap


def test_gaps_on_hand_made_predictions():
    # group a: perfect; group b: one negative called positive (FPR 1/2), one positive missed
    predicted = [1, 0, 1, 0, 1, 1, 0]
    actual = [1, 0, 1, 0, 1, 0, 1]
    groups = ["a", "a", "a", "a", "b", "b", "b"]
    found = fairness.report(predicted, actual, groups, n_classes=2)
    assert found["groups"]["a"] == {
        "examples": 4, "accuracy": 1.0, "macro_f1": 1.0, "tpr": 1.0, "fpr": 0.0
    }  # fmt: skip
    assert found["groups"]["b"]["tpr"] == 0.5 and found["groups"]["b"]["fpr"] == 1.0
    assert found["equal_opportunity_gap"] == 0.5
    assert found["equalized_odds_gap"] == 1.0
    assert found["accuracy_gap"] == pytest.approx(1 - 1 / 3)


def test_reweighing_balances_group_and_label():
    rows = fairness.reweighed(TRAIN * 20, seed=0)  # many draws: the weights show
    b = [ex for ex in rows if ex.group == "b"]
    share_no = sum(ex.label == "no" for ex in b) / len(b)
    assert 0.2 < share_no < 0.4  # P(no) overall is 12/40 = 0.3, b's own was 2/20
