"""Task files for lm-eval: each kind is read and checked, and exact-match and perplexity tasks
score the pretrained base through the harness, from local files only (multiple choice runs
through the whole job in tests/api/test_evaluation_reports.py)."""

from __future__ import annotations

import json

import pytest

from core.evaluation import benchmarks
from core.tiny_pretrain import CAPITALS


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([{"query": "q", "choices": ["a"], "gold": 0}], "line 1: choices"),
        ([{"query": "q", "choices": ["a", "b"], "gold": 2}], "line 1: gold"),
        ([{"text": "a"}, {"prompt": "p", "answer": "a"}], "line 2: a exact_match row"),
        ([{"question": "q"}], "line 1: a row has"),
        ([], "no rows"),
    ],
)
def test_a_bad_task_file_names_its_line(tmp_path, rows, error):
    with pytest.raises(benchmarks.TaskFileError, match=error):
        benchmarks.read_task_file(_write(tmp_path / "t.jsonl", rows))


def test_exact_match_and_perplexity_through_lm_eval(pretrained_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    facts = list(CAPITALS.items())
    em = _write(
        tmp_path / "em.jsonl",
        [{"prompt": f"The capital of {c} is", "answer": f" {city}."} for c, city in facts],
    )
    known = _write(
        tmp_path / "known.jsonl", [{"text": f"The capital of {c} is {x}."} for c, x in facts]
    )
    shuffled = [(c, facts[(i + 1) % len(facts)][1]) for i, (c, _) in enumerate(facts)]
    wrong = _write(
        tmp_path / "wrong.jsonl", [{"text": f"The capital of {c} is {x}."} for c, x in shuffled]
    )
    assert benchmarks.read_task_file(em) == ("exact_match", len(facts))
    tasks = [("em", em), ("known", known), ("wrong", wrong)]
    include = benchmarks.write_tasks(tasks, tmp_path / "work")
    model = AutoModelForCausalLM.from_pretrained(pretrained_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(pretrained_model)
    scores = benchmarks.evaluate(model, tokenizer, ["em", "known", "wrong"], include)
    assert scores["em"]["exact_match"] == 1.0  # it completes every capital
    assert scores["known"]["word_perplexity"] < scores["wrong"]["word_perplexity"]
    assert {"byte_perplexity", "bits_per_byte"} <= set(scores["known"])
