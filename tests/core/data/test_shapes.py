"""Ecosystem dataset shapes: detected, converted into Lathe's examples, named in the report;
a bad row is an error naming its line."""

from __future__ import annotations

import gzip
import json

import pytest

from core.data import Conversation, Message, PreferencePair, Segments, TokenIds, validate_dataset
from core.data.limits import ReadLimits
from core.data.readers import read_records
from core.data.report import DataIssue
from core.data.validate import read_dataset
from core.tiny_model import build_tokenizer
from core.training.tokenize import IGNORE, UnfaithfulRender, tokenize_example

U, A = "user", "assistant"


def errors(report) -> list[tuple]:
    return [(e.line, e.field, e.code) for e in report.errors]


def test_alpaca_json_array_streams_with_line_numbers(tmp_path):
    path = tmp_path / "alpaca_data.json"
    rows = [{"instruction": "Say hi", "input": "", "output": "hi"}]
    rows.append({"instruction": "Add", "input": "1+1", "output": "2"})
    path.write_text(json.dumps(rows, indent=2))
    report, examples = read_dataset(path, path.name)
    assert (report.ok, report.format, report.shape, report.container) == (
        True, "alpaca", "alpaca", "json_array"
    )  # fmt: skip
    assert [e.line for e in examples] == [2, 7]  # where each element starts
    assert examples[1] == Conversation((Message(U, "Add\n\n1+1"), Message(A, "2")), line=7)


def test_json_array_of_chat_rows_gzipped(tmp_path):
    path = tmp_path / "chat.json.gz"
    row = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "R"}]}
    path.write_bytes(gzip.compress(json.dumps([row, row]).encode()))
    report = validate_dataset(path, path.name)
    assert report.ok and report.n_examples == 2 and report.container == "json_array"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"instruction": "a", "output": "b"},\n {"instruction": 3, "output": "b"},\n 5]',
         [(2, "instruction", "wrong_type"), (3, None, "not_an_object")]),
        ('[{"instruction": "a", "output": "b"},\n {"instruction": "a"',
         [(2, None, "invalid_json")]),
        ('[{"instruction": "a", "output": "b"} {"x": 1}]', [(1, None, "invalid_json")]),
    ],
)  # fmt: skip
def test_json_array_errors_name_the_line(tmp_path, text, expected):
    path = tmp_path / "d.json"
    path.write_text(text)
    assert errors(validate_dataset(path, path.name))[: len(expected)] == expected


def test_json_array_memory_is_bounded_by_the_line_limit(tmp_path):
    path = tmp_path / "big.json"
    small = json.dumps({"text": "x"})
    path.write_text("[" + small + ", " + json.dumps({"text": "y" * 5000}) + ", " + small + "]")
    rows = list(read_records(path, path.name, ReadLimits(max_line_bytes=1000)))
    assert rows[0].data == {"text": "x"}
    assert isinstance(rows[1], DataIssue) and rows[1].code == "line_too_long" and len(rows) == 2
    rows = list(read_records(path, path.name, ReadLimits(max_lines=2)))
    assert rows[-1].code == "too_many_lines" and len(rows) == 3


HH = {
    "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name?\n\nAssistant: Lathe.",
    "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name?\n\nAssistant: Go away.",
}
UF = {
    "prompt": "Hi",
    "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No."}],
    "score_chosen": 8.0,
    "score_rejected": 2.0,
}


def test_hh_rlhf_and_ultrafeedback_are_prompt_and_two_replies(jsonl):
    report, (hh,) = read_dataset(jsonl([HH]), "hh.jsonl", method="dpo")
    assert report.ok and report.shape == "hh_rlhf"
    prompt = (Message(U, "Hi"), Message(A, "Hello!"), Message(U, "Name?"))
    assert hh == PreferencePair(prompt, (Message(A, "Lathe."),), (Message(A, "Go away."),), 1)
    report, (uf,) = read_dataset(jsonl([UF]), "uf.jsonl", method="reward_model")
    assert report.ok and report.shape == "ultrafeedback"
    assert uf == PreferencePair(
        (Message(U, "Hi"),), (Message(A, "Hello!"),), (Message(A, "No."),), 1
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({**HH, "rejected": "\n\nHuman: Bye\n\nAssistant: No."}, ("rejected", "prompt_mismatch")),
        ({**UF, "prompt": "Other"}, ("prompt", "prompt_mismatch")),
        ({**HH, "chosen": "\n\nHuman: Hi\n\nAssistant: "}, ("chosen", "empty_chosen")),
        ({**UF, "chosen": UF["chosen"][:1]}, ("chosen[0].role", "last_turn_not_assistant")),
    ],
)
def test_bad_whole_conversation_pairs_name_line_and_field(jsonl, row, expected):
    report = validate_dataset(jsonl([HH, row]), "p.jsonl")
    assert errors(report)[0] == (2, *expected)


LLAMAFACTORY = {
    "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {
            "from": "function_call",
            "value": '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        },
        {"from": "observation", "value": "sunny"},
        {"from": "gpt", "value": "Sunny."},
    ],
    "system": "Be brief.",
    "tools": json.dumps([{"name": "get_weather", "parameters": {"type": "object"}}]),
}


def test_llamafactory_sharegpt_with_tool_turns(jsonl):
    report, (conv,) = read_dataset(jsonl([LLAMAFACTORY]), "lf.jsonl")
    assert report.ok and report.format == "sharegpt" and report.shape == "llamafactory_sharegpt"
    assert [m.role for m in conv.messages] == ["system", U, A, "tool", A]
    assert conv.messages[2].tool_calls[0]["function"] == {
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }
    assert conv.tools[0]["function"]["name"] == "get_weather"
    bad = json.loads(json.dumps(LLAMAFACTORY))
    bad["conversations"][1]["value"] = '{"name": "get_time", "arguments": {}}'
    report = validate_dataset(jsonl([LLAMAFACTORY, bad]), "lf.jsonl")
    assert errors(report) == [(2, "conversations[1].tool_calls[0].function.name", "unknown_tool")]


def test_pretokenized_rows_drop_padding_and_check_the_vocabulary(jsonl):
    row = {
        "input_ids": [0, 10, 11, 12],
        "labels": [-100, -100, 11, 12],
        "attention_mask": [0, 1, 1, 1],
    }
    report, (ex,) = read_dataset(jsonl([row]), "t.jsonl")
    assert report.ok and report.shape == "pretokenized"
    assert ex == TokenIds((10, 11, 12), (-100, 11, 12), line=1)
    tok = build_tokenizer()
    t = tokenize_example(tok, ex, 512)
    assert (t.input_ids, t.labels) == ([10, 11, 12], [IGNORE, 11, 12])
    with pytest.raises(UnfaithfulRender) as info:
        tokenize_example(tok, TokenIds((1, len(tok)), (1, len(tok)), line=4), 512)
    assert (info.value.line, info.value.field) == (4, "input_ids[1]")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"input_ids": [1, 2], "labels": [1]}, ("labels", "length_mismatch")),
        ({"input_ids": [1, 2], "labels": [2, 3]}, ("labels[0]", "wrong_type")),  # pre-shifted
        ({"input_ids": [1, 2, 3], "attention_mask": [1, 0, 1]}, ("attention_mask", "wrong_type")),
        ({"input_ids": [1, -2]}, ("input_ids[1]", "wrong_type")),
        ({"input_ids": [1, 2], "labels": [-100, -100]}, ("labels", "no_trainable_turn")),
    ],
)
def test_bad_pretokenized_rows(jsonl, row, expected):
    report = validate_dataset(jsonl([{"input_ids": [1]}, row]), "t.jsonl")
    assert errors(report) == [(2, *expected)]


def test_axolotl_input_output_segments(jsonl):
    row = {"segments": [{"text": "Q: hi\n", "label": False}, {"text": "A: hello", "label": True}]}
    report, (ex,) = read_dataset(jsonl([row]), "s.jsonl", method="supervised")
    assert report.ok and report.shape == "axolotl_input_output"
    assert ex == Segments((("Q: hi\n", False), ("A: hello", True)), line=1)
    tok = build_tokenizer()
    t = tokenize_example(tok, ex, 512)
    kept = [i for i, lab in zip(t.input_ids, t.labels, strict=True) if lab != IGNORE]
    assert tok.decode(kept) == "A: hello"
    bad = {"segments": [{"text": "x", "label": "yes"}]}
    assert errors(validate_dataset(jsonl([row, bad]), "s.jsonl")) == [
        (2, "segments[0].label", "wrong_type")
    ]
