"""The dry-run report's pieces, with the tiny model's real tokenizer and chat template.

Token counts are worked out from the tiny tokenizer's pieces, e.g. "<|user|>\\nHello<|end|>\\n"
is <|user|> \\n Hell o <|end|> \\n (6) and "<|assistant|>\\nYes<|end|>\\n" is
<|assistant|> \\n Y es <|end|> \\n (6, the last 4 trained). The full report against
hand-computed numbers is tested through the API (tests/api/test_datasets.py).
"""

from __future__ import annotations

import json

import pytest

from core.data.examples import (
    Conversation,
    LabeledText,
    Message,
    PreferencePair,
    PromptExample,
    TextExample,
)
from core.errors import InvalidRequest
from core.jobspec.job import DataOptions
from core.training.dry_run import _schedule, build_report, sequences


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def U(text: str) -> Message:
    return Message("user", text)


def A(text: str) -> Message:
    return Message("assistant", text)


def shape(seqs) -> list[tuple[str, int, int]]:
    return [(kind, len(t.input_ids), t.n_trained) for kind, t in seqs]


def test_each_example_type_tokenizes_as_its_trainer_sees_it(tok):
    assert shape(sequences(tok, Conversation((U("Hello"), A("Yes"))))) == [("example", 12, 4)]
    # a pair is two sequences, prompt + reply, only the reply trained
    pair = PreferencePair((U("Hello"),), (A("Yes"),), (A("No"),))
    assert shape(sequences(tok, pair)) == [("chosen", 12, 4), ("rejected", 11, 3)]
    # an RL prompt ends with the generation prompt; the policy writes the rest
    [(kind, prompt)] = sequences(tok, PromptExample((U("Hello"),)))
    assert (kind, len(prompt.input_ids), prompt.n_trained) == ("prompt", 8, 0)
    assert tok.decode(prompt.input_ids[-2:]) == "<|assistant|>\n"
    # plain text: The / answer / is / 42 / . + eos, all trained
    assert shape(sequences(tok, TextExample("The answer is 42."))) == [("example", 6, 6)]
    # a classifier reads every token: Y es No
    assert shape(sequences(tok, LabeledText("Yes", "pos", text_pair="No"))) == [("text", 3, 3)]


def _chat(user: str, assistant: str) -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    }


def _report(tok, path, **kw):
    args = {
        "method": "supervised",
        "n_epochs": "auto",
        "max_seq_length": "auto",
        "data": DataOptions(),
        "seed": 0,
        "tokens_per_second": 10.0,
    } | kw
    return build_report(path, path.name, lambda: tok, **args)


def test_plan_dedupes_then_splits_and_estimates_on_the_training_part(tok, tmp_path):
    # 30 rows: 28 distinct "Hello 50".."Hello 77" / "Yes" conversations, 2 repeats of row 1.
    # Each is 14 tokens: <|user|> \n Hell o ␣5 0 <|end|> \n + <|assistant|> \n Y es <|end|> \n
    rows = [_chat(f"Hello {i}", "Yes") for i in range(50, 78)] + [_chat("Hello 50", "Yes")] * 2
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = _report(tok, path, data=DataOptions(dedupe=True), seed=5)
    assert report["duplicates"]["exact"] == 2
    assert [p["duplicate_of"] for p in report["duplicates"]["exact_pairs"]] == [1, 1]
    # 28 left; auto split: int(28 * 0.1) = 2 held out, 26 trained
    assert report["data"] == {
        "n_dropped": 0,
        "n_train": 26,
        "n_validation": 2,
        "n_test": 0,
        "notes": [
            "Removed 2 exact duplicate examples (data.dedupe)",
            "Held out 2 of 28 examples for validation (data.validation_split=auto, seed 5)",
        ],
    }
    assert report["estimate"] == {
        "n_epochs": 4,  # auto: ceil(100 / 26)
        "max_seq_length": 2048,
        "tokens_per_epoch": 26 * 14,  # the training part only
        "trained_tokens": 4 * 26 * 14,
        "tokens_per_second": 10.0,
        "seconds": 145.6,  # 1456 / 10
    }
    tokens = report["tokens"]  # statistics describe the whole file
    assert (tokens["n_sequences"], tokens["total_tokens"], tokens["trained_tokens"]) == (
        30,
        30 * 14,
        30 * 4,
    )


def test_empty_rows_fail_unless_dropped(tok, tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [_chat("Hello", "Yes"), _chat("Hello", " "), _chat("No", "Yes")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    strict = _report(tok, path)
    assert not strict["ok"] and strict["error_count"] == 1
    assert strict["errors"][0] | {"message": None} == {
        "line": 2,
        "field": "messages[1].content",
        "message": None,
        "code": "empty_content",
    }
    assert strict["n_examples"] == 2 and strict["tokens"]["n_sequences"] == 2  # still measured
    dropped = _report(tok, path, data=DataOptions(drop_empty=True))
    assert dropped["ok"] and dropped["data"]["n_dropped"] == 1
    assert dropped["data"]["notes"][0] == (
        "Dropped 1 empty row from the file (data.drop_empty): line 2"
    )


def test_epochs_and_length_follow_each_methods_auto_rules():
    assert _schedule("supervised", "auto", "auto", 10, 0) == (10, 2048)
    assert _schedule("supervised", 2, 64, 10, 0) == (2, 64)
    assert _schedule("reward_model", "auto", "auto", 10, 0) == (1, 1024)
    assert _schedule("dpo", "auto", "auto", 50, 0) == (3, 1024)
    with pytest.raises(InvalidRequest) as exc:
        _schedule("dpo", "auto", 4, 50, 0)
    assert exc.value.param == "hyperparameters.max_seq_length"
