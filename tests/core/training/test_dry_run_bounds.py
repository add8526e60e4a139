"""The dry run runs in the API process, so its work is bounded: the whole file is validated,
but only the first LATHE_DRY_RUN_MAX_EXAMPLES examples are kept and measured, and the
near-duplicate search stops at a candidate cap; each cut is a note in the report."""

from __future__ import annotations

import json

import pytest

from core.data.cleaning import near_duplicates_bounded
from core.data.examples import TextExample
from core.jobspec.job import DataOptions
from core.training import dry_run
from tests.core.training.test_dry_run import _chat, _report


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_only_the_first_examples_are_measured_but_all_are_validated(tok, tmp_path):
    rows = [_chat(f"Hello {i}", "Yes") for i in range(50)] + ['{"bad": 1}']
    path = tmp_path / "d.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    report = _report(tok, path, max_examples=10, data=DataOptions(validation_split=0))
    assert report["n_examples"] == 50 and report["error_count"] == 1
    assert report["errors"][0]["line"] == 51  # validated past the measured part
    assert report["tokens"]["n_sequences"] == 10 and report["data"]["n_train"] == 10
    assert report["data"]["notes"][-1].startswith("Measured the first 10 of 50 examples")


def test_near_duplicate_search_stops_at_its_candidate_cap():
    similar = [TextExample(f"the same long sentence again and again {i:04d}") for i in range(300)]
    pairs, complete = near_duplicates_bounded(similar, 0.5, max_candidates=1000)
    assert not complete and pairs  # stopped early, with what it had verified
    full, complete = near_duplicates_bounded(similar[:20], 0.5)
    assert complete and len(full) == 20 * 19 // 2


def test_identical_rows_do_not_make_the_near_search_quadratic(tok, tmp_path, monkeypatch):
    monkeypatch.setattr(dry_run, "MAX_NEAR_CANDIDATES", 100)
    path = tmp_path / "d.jsonl"
    path.write_text((json.dumps(_chat("Hello", "Yes")) + "\n") * 2000)
    report = _report(tok, path)
    assert report["duplicates"]["exact"] == 1999 and report["duplicates"]["near"] == 0
    assert not any("Near-duplicate search stopped" in n for n in report["data"]["notes"])
