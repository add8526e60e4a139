"""A corpus of broken files: each must report the exact line, field path and code."""

from __future__ import annotations

import json

import pytest

from core.data import DataError, DatasetFormat, load_examples, validate_dataset

U = {"role": "user", "content": "Q"}
A = {"role": "assistant", "content": "R"}
CHAT = {"messages": [U, A]}
DPO = {
    "input": {"messages": [U]},
    "preferred_output": [A],
    "non_preferred_output": [{"role": "assistant", "content": "worse"}],
}
PCR = {"prompt": "Q", "chosen": "good", "rejected": "bad"}
RANKED = {"prompt": "Q", "completions": ["a", "b"], "ranking": [0, 1]}


def chat(*messages, **extra):
    return {"messages": list(messages), **extra}


def msg(role, content="x", **extra):
    return {"role": role, "content": content, **extra}


CASES = {
    # reading
    "invalid_json": ([CHAT, '{"messages": [}'], {}, [(2, None, "invalid_json")]),
    "not_an_object": (
        [CHAT, "[1, 2]", '"text"'],
        {},
        [(2, None, "not_an_object"), (3, None, "not_an_object")],
    ),
    "unknown_format": ([CHAT, {"foo": 1}], {}, [(2, None, "unknown_format")]),
    "mixed_formats": (
        [CHAT, CHAT, {"text": "t"}, {"prompt": "p", "completion": "c"}],
        {},
        [(3, None, "mixed_formats"), (4, None, "mixed_formats")],
    ),
    # chat
    "messages_wrong_type": ([CHAT, {"messages": "hi"}], {}, [(2, "messages", "wrong_type")]),
    "messages_empty": ([CHAT, {"messages": []}], {}, [(2, "messages", "empty_messages")]),
    "message_not_object": ([CHAT, chat(U, "oops", A)], {}, [(2, "messages[1]", "wrong_type")]),
    "missing_role": (
        [CHAT, chat(U, {"content": "R"})],
        {},
        [(2, "messages[1].role", "missing_field")],
    ),
    "unknown_role": ([CHAT, chat(msg("bot"), A)], {}, [(2, "messages[0].role", "unknown_role")]),
    "missing_content": (
        [CHAT, chat(U, {"role": "assistant"})],
        {},
        [(2, "messages[1].content", "missing_field")],
    ),
    "content_wrong_type": (
        [CHAT, chat(msg("user", 5), A)],
        {},
        [(2, "messages[0].content", "wrong_type")],
    ),
    "empty_content": (
        [CHAT, chat(msg("system", "S"), msg("user", "  "), A)],
        {},
        [(2, "messages[1].content", "empty_content")],
    ),
    "image_content": (
        [CHAT, chat(msg("user", [{"type": "image_url", "image_url": {}}]), A)],
        {},
        [(2, "messages[0].content[0]", "unsupported_content")],
    ),
    "two_errors_one_row": (
        [CHAT, chat(msg("bot"), msg("user", ""), A)],
        {},
        [(2, "messages[0].role", "unknown_role"), (2, "messages[1].content", "empty_content")],
    ),
    "last_not_assistant": (
        [CHAT, chat(U, A, U)],
        {"method": "supervised"},
        [(2, "messages[2].role", "last_turn_not_assistant")],
    ),
    "all_weights_zero": (
        [CHAT, chat(U, msg("assistant", weight=0))],
        {},
        [(2, "messages", "no_trainable_turn")],
    ),
    "weight_not_0_1": (
        [CHAT, chat(U, msg("assistant", weight=0.5))],
        {},
        [(2, "messages[1].weight", "invalid_weight")],
    ),
    "weight_bool": (
        [CHAT, chat(U, msg("assistant", weight=True))],
        {},
        [(2, "messages[1].weight", "invalid_weight")],
    ),
    "weight_on_user": (
        [CHAT, chat(msg("user", weight=1), A)],
        {},
        [(2, "messages[0].weight", "weight_not_allowed")],
    ),
    "tool_calls_on_user": (
        [CHAT, chat(msg("user", tool_calls=[{}]), A)],
        {},
        [(2, "messages[0].tool_calls", "wrong_role")],
    ),
    "tools_wrong_type": ([CHAT, chat(U, A, tools="add")], {}, [(2, "tools", "wrong_type")]),
    # prompt/completion, alpaca, sharegpt, text
    "completion_missing_prompt": (
        [{"completion": "c"}],
        {"min_examples": 0},
        [(1, "prompt", "missing_field")],
    ),
    "completion_empty": (
        [{"prompt": "p", "completion": ""}],
        {"min_examples": 0},
        [(1, "completion", "empty_content")],
    ),
    "alpaca_no_output": (
        [{"instruction": "i", "output": "o"}, {"instruction": "i"}],
        {},
        [(2, "output", "missing_field")],
    ),
    "alpaca_input_type": (
        [{"instruction": "i", "input": 3, "output": "o"}],
        {"min_examples": 0},
        [(1, "input", "wrong_type")],
    ),
    "sharegpt_speaker": (
        [{"conversations": [{"from": "bot", "value": "v"}]}],
        {"min_examples": 0},
        [(1, "conversations[0].from", "unknown_role")],
    ),
    "sharegpt_ends_human": (
        [{"conversations": [{"from": "human", "value": "v"}]}],
        {"min_examples": 0},
        [(1, "conversations[0].from", "last_turn_not_assistant")],
    ),
    "text_not_string": ([{"text": "a"}, {"text": ["a"]}], {}, [(2, "text", "wrong_type")]),
    # preference
    "dpo_input_ends_assistant": (
        [DPO, {**DPO, "input": {"messages": [U, A]}}],
        {"method": "dpo"},
        [(2, "input.messages[1].role", "prompt_ends_with_assistant")],
    ),
    "dpo_input_not_object": ([DPO, {**DPO, "input": "Q"}], {}, [(2, "input", "wrong_type")]),
    "dpo_empty_preferred": (
        [DPO, {**DPO, "preferred_output": []}],
        {},
        [(2, "preferred_output", "empty_chosen")],
    ),
    "dpo_output_role": (
        [DPO, {**DPO, "non_preferred_output": [U]}],
        {},
        [(2, "non_preferred_output[0].role", "wrong_role")],
    ),
    "pcr_empty_rejected": (
        [PCR, {**PCR, "rejected": " "}],
        {},
        [(2, "rejected", "empty_rejected")],
    ),
    "pcr_missing_chosen": (
        [PCR, {"prompt": "Q", "rejected": "bad"}],
        {},
        [(2, "chosen", "missing_field")],
    ),
    # ranked
    "ranked_out_of_range": (
        [RANKED, {**RANKED, "ranking": [0, 2]}],
        {},
        [(2, "ranking[1]", "invalid_ranking")],
    ),
    "ranked_duplicate": (
        [RANKED, {**RANKED, "ranking": [1, 1]}],
        {},
        [(2, "ranking[1]", "invalid_ranking")],
    ),
    "ranked_partial": (
        [RANKED, {**RANKED, "ranking": [1]}],
        {},
        [(2, "ranking", "invalid_ranking")],
    ),
    "ranked_not_int": (
        [RANKED, {**RANKED, "ranking": ["0", 1]}],
        {},
        [(2, "ranking[0]", "wrong_type")],
    ),
    "ranked_one_completion": (
        [RANKED, {**RANKED, "completions": ["a"], "ranking": [0]}],
        {},
        [(2, "completions", "too_few_completions")],
    ),
    "ranked_empty_completion": (
        [RANKED, {**RANKED, "completions": ["a", ""]}],
        {},
        [(2, "completions[1]", "empty_content")],
    ),
    # classification
    "label_missing": (
        [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"text": "c", "label": None}],
        {},
        [(3, "label", "missing_field")],
    ),
    "label_float": (
        [{"text": "a", "label": "x"}, {"text": "b", "label": 1.5}],
        {},
        [(2, "label", "wrong_type"), (0, "label", "single_class")],
    ),
    "single_class": (
        [{"text": "a", "label": 1}, {"text": "b", "label": 1}],
        {"method": "classification"},
        [(0, "label", "single_class")],
    ),
    # prompts
    "prompts_end_with_assistant": (
        [chat(U), chat(U, A)],
        {"method": "grpo"},
        [(2, "messages[1].role", "last_turn_not_user")],
    ),
    "prompt_empty": ([{"prompt": "p"}, {"prompt": ""}], {}, [(2, "prompt", "empty_content")]),
    # file level
    "too_few_examples": ([CHAT, CHAT], {"min_examples": 3}, [(0, None, "too_few_examples")]),
    "empty_file": ([], {}, [(0, None, "too_few_examples")]),
    "method_rejects_format": (
        [CHAT],
        {"method": "dpo"},
        [(0, None, "format_not_supported_by_method")],
    ),
    "declared_format_mismatch": (
        [CHAT],
        {"expected": DatasetFormat.TEXT},
        [(1, None, "format_mismatch"), (0, None, "too_few_examples")],
    ),
}


@pytest.mark.parametrize("case", CASES.keys())
def test_broken_file(jsonl, case):
    rows, kwargs, expected = CASES[case]
    report = validate_dataset(jsonl(rows), "data.jsonl", **kwargs)
    assert [(i.line, i.field, i.code) for i in report.errors] == expected
    assert report.error_count == len(expected)
    assert not report.ok


def test_method_error_names_detected_and_accepted_formats(jsonl):
    report = validate_dataset(jsonl([CHAT]), "d.jsonl", method="dpo")
    assert report.errors[0].message == (
        "method 'dpo' trains on preference or ranked data, but this file is chat"
    )


def test_identical_pair_is_a_warning(jsonl):
    report = validate_dataset(jsonl([{**PCR, "rejected": "good"}]), "d.jsonl")
    assert report.ok
    assert [(w.line, w.field, w.code) for w in report.warnings] == [
        (1, "rejected", "identical_pair")
    ]


def test_errors_capped_but_counted(jsonl):
    rows = [CHAT] + ['{"bad"'] * 30
    report = validate_dataset(jsonl(rows), "d.jsonl", max_errors=5)
    assert report.error_count == 30
    assert [i.line for i in report.errors] == [2, 3, 4, 5, 6]
    assert report.n_examples == 1


def test_load_examples_raises_with_report(jsonl):
    path = jsonl([CHAT, chat(U, msg("assistant", weight=2)), "{"])
    with pytest.raises(DataError) as err:
        load_examples(path, path.name)
    assert str(err.value).startswith("line 2, messages[1].weight: weight must be 0 or 1")
    assert str(err.value).endswith("(and 1 more error)")
    assert err.value.report.error_count == 2
    json.dumps(err.value.report.as_dict())  # the API can return it as is


def test_a_broken_json_line_names_one_line_the_files(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{json.dumps(CHAT)}\n{json.dumps(CHAT)}\n" + '{"messages": [}\n')
    [issue] = validate_dataset(path, path.name).errors
    assert issue.line == 3 and issue.code == "invalid_json"
    assert issue.message == "invalid JSON: Expecting value at character 15 of the line"
