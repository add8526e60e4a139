"""One happy path per dataset format: detection and the normalised examples it yields."""

from __future__ import annotations

import pytest

from core.data import (
    Conversation,
    DatasetFormat,
    LabeledText,
    Message,
    PreferencePair,
    PromptExample,
    TextExample,
    formats_for_method,
    load_examples,
    validate_dataset,
)

U, A = "user", "assistant"


def load(path, **kw):
    return load_examples(path, path.name, **kw)


def test_chat(jsonl):
    tool_call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1}'},
    }
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello", "weight": 0},
                {"role": "user", "content": "Add 1"},
                {"role": "assistant", "content": "", "tool_calls": [tool_call]},
                {"role": "tool", "content": "2", "tool_call_id": "c1"},
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "It is "}, {"type": "text", "text": "2"}],
                    "weight": 1,
                },
            ],
            "tools": [{"type": "function", "function": {"name": "add"}}],
        },
        {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "R"}]},
    ]
    fmt, examples = load(jsonl(rows), method="supervised")
    assert fmt == DatasetFormat.CHAT
    first, second = examples
    assert first.line == 1 and second.line == 2
    assert [m.role for m in first.messages] == ["system", U, A, U, A, "tool", A]
    assert first.messages[2].weight == 0.0
    # arguments decoded into an object: the shape chat templates render with tojson
    decoded = {**tool_call, "function": {"name": "add", "arguments": {"a": 1}}}
    assert first.messages[4].tool_calls == (decoded,)
    assert first.messages[5].tool_call_id == "c1"
    assert first.messages[6] == Message(A, "It is 2", weight=1.0)
    assert first.tools == ({"type": "function", "function": {"name": "add"}},)
    assert second == Conversation((Message(U, "Q"), Message(A, "R")), line=2)


def test_prompt_completion(jsonl):
    fmt, examples = load(jsonl([{"prompt": "2+2=", "completion": " 4"}]))
    assert fmt == DatasetFormat.PROMPT_COMPLETION
    assert examples == [Conversation((Message(U, "2+2="), Message(A, " 4")), line=1)]


def test_alpaca(jsonl):
    rows = [
        {"instruction": "Translate", "input": "chat", "output": "cat"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
        {"instruction": "Say yo", "output": "yo"},
    ]
    fmt, examples = load(jsonl(rows))
    assert fmt == DatasetFormat.ALPACA
    assert [ex.messages[0].content for ex in examples] == ["Translate\n\nchat", "Say hi", "Say yo"]
    assert examples[0].messages[1] == Message(A, "cat")


def test_sharegpt(jsonl):
    row = {
        "conversations": [
            {"from": "system", "value": "S"},
            {"from": "human", "value": "Q"},
            {"from": "gpt", "value": "A"},
            {"from": "user", "value": "Q2"},
            {"from": "function", "value": "F"},
            {"from": "assistant", "value": "A2"},
        ]
    }
    fmt, [ex] = load(jsonl([row]))
    assert fmt == DatasetFormat.SHAREGPT
    assert [(m.role, m.content) for m in ex.messages] == [
        ("system", "S"),
        (U, "Q"),
        (A, "A"),
        (U, "Q2"),
        ("tool", "F"),
        (A, "A2"),
    ]


def test_text(jsonl):
    fmt, examples = load(jsonl([{"text": "Once upon a time"}, "", {"text": "The end"}]))
    assert fmt == DatasetFormat.TEXT
    assert examples == [TextExample("Once upon a time", line=1), TextExample("The end", line=3)]


def test_preference_openai_dpo(jsonl):
    row = {
        "input": {
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
        },
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    fmt, [pair] = load(jsonl([row]), method="dpo")
    assert fmt == DatasetFormat.PREFERENCE
    assert pair == PreferencePair(
        (Message("system", "S"), Message(U, "Q")),
        (Message(A, "good"),),
        (Message(A, "bad"),),
        line=1,
    )


def test_preference_prompt_chosen_rejected(jsonl):
    rows = [
        {"prompt": "Q", "chosen": "good", "rejected": "bad"},
        {
            "prompt": [{"role": "user", "content": "Q2"}],
            "chosen": [{"role": "assistant", "content": "g2"}],
            "rejected": {"role": "assistant", "content": "b2"},
        },
    ]
    fmt, examples = load(jsonl(rows), method="reward_model")
    assert fmt == DatasetFormat.PREFERENCE
    assert examples == [
        PreferencePair((Message(U, "Q"),), (Message(A, "good"),), (Message(A, "bad"),), line=1),
        PreferencePair((Message(U, "Q2"),), (Message(A, "g2"),), (Message(A, "b2"),), line=2),
    ]


def test_ranked_expands_best_first(jsonl):
    row = {"prompt": "Q", "completions": ["c0", "c1", "c2"], "ranking": [2, 0, 1]}
    report = validate_dataset(jsonl([row]), "data.jsonl", method="dpo")
    assert report.ok and report.n_examples == 3 and report.n_records == 1
    fmt, pairs = load(jsonl([row]), method="dpo")
    assert fmt == DatasetFormat.RANKED
    assert [(p.chosen[0].content, p.rejected[0].content) for p in pairs] == [
        ("c2", "c0"),
        ("c2", "c1"),
        ("c0", "c1"),
    ]
    assert all(p.prompt == (Message(U, "Q"),) and p.line == 1 for p in pairs)


def test_classification(jsonl):
    rows = [
        {"text": "great", "label": "pos"},
        {"text": "a", "text_pair": "b", "label": 0},
        {"text": "bad", "label": "neg"},
    ]
    fmt, examples = load(jsonl(rows), method="classification")
    assert fmt == DatasetFormat.CLASSIFICATION
    assert examples == [
        LabeledText("great", "pos", line=1),
        LabeledText("a", "0", text_pair="b", line=2),
        LabeledText("bad", "neg", line=3),
    ]


def test_prompts(jsonl):
    rows = [
        {"prompt": "2+2?", "reference_answer": "4", "difficulty": "easy"},
        {"prompt": "3+3?", "reference": 6},
    ]
    fmt, examples = load(jsonl(rows), method="grpo")
    assert fmt == DatasetFormat.PROMPTS
    assert examples == [
        PromptExample((Message(U, "2+2?"),), reference="4", extra={"difficulty": "easy"}, line=1),
        PromptExample((Message(U, "3+3?"),), reference="6", extra={}, line=2),
    ]


def test_messages_are_prompts_for_rl_and_chat_for_sft(jsonl):
    path = jsonl(
        [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]}]
    )
    fmt, [ex] = load(path, method="ppo")
    assert fmt == DatasetFormat.PROMPTS
    assert ex == PromptExample((Message("system", "S"), Message(U, "Q")), line=1)
    assert validate_dataset(path, path.name).format == DatasetFormat.PROMPTS  # final user turn
    report = validate_dataset(path, path.name, method="supervised")
    assert report.format == DatasetFormat.CHAT
    assert [e.code for e in report.errors] == ["last_turn_not_assistant", "too_few_examples"]


def test_expected_format_is_enforced(jsonl):
    path = jsonl([{"text": "hello"}])
    fmt, _ = load(path, expected=DatasetFormat.TEXT)
    assert fmt == DatasetFormat.TEXT
    report = validate_dataset(path, path.name, expected=DatasetFormat.CHAT)
    assert (report.errors[0].line, report.errors[0].code) == (1, "format_mismatch")


@pytest.mark.parametrize(
    ("method", "formats"),
    [
        (
            "supervised",
            {
                "chat",
                "prompt_completion",
                "alpaca",
                "sharegpt",
                "text",
                "tokenized",
                "input_output",
            },
        ),
        ("dpo", {"preference", "ranked"}),
        ("reward_model", {"preference", "ranked"}),
        ("ppo", {"prompts"}),
        ("grpo", {"prompts"}),
        ("classification", {"classification"}),
    ],
)
def test_formats_for_method(method, formats):
    assert formats_for_method(method) == formats


def test_formats_for_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        formats_for_method("sft")
