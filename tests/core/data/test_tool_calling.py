"""Tool-calling rows: normalised, rendered through the chat template with their tools, loss on
the calls; what cannot be rendered faithfully is an error naming its line and field."""

from __future__ import annotations

import json

import pytest

from core.data import Conversation, validate_dataset
from core.data.tools import template_messages, template_tools
from core.data.validate import read_dataset
from core.tiny_model import build_tokenizer
from core.training.tokenize import IGNORE, UnfaithfulRender, tokenize_example

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TOOLS = [{"type": "function", "function": WEATHER}]


def call(cid: str, city: str) -> dict:
    args = json.dumps({"city": city})
    return {"id": cid, "type": "function", "function": {"name": "get_weather", "arguments": args}}


PARALLEL = {
    "tools": TOOLS,
    "parallel_tool_calls": True,
    "messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call("a", "Paris"), call("b", "Rome")],
        },
        {"role": "tool", "tool_call_id": "a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "b", "content": "rain"},
        {"role": "assistant", "content": "Sunny in Paris, rain in Rome."},
    ],
}
LEGACY = {
    "functions": [WEATHER],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"role": "function", "name": "get_weather", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ],
}


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()  # Lathe's default template, with tools


def trained(tok, t) -> str:
    return tok.decode([i for i, lab in zip(t.input_ids, t.labels, strict=True) if lab != IGNORE])


def test_parallel_calls_are_rendered_with_the_tools_and_trained(jsonl, tok):
    report, (conv,) = read_dataset(jsonl([PARALLEL]), "t.jsonl")
    assert report.ok and conv.parallel_tool_calls is True
    assert conv.messages[1].tool_calls[1]["function"]["arguments"] == {"city": "Rome"}
    t = tokenize_example(tok, conv, 1024)
    text = tok.decode(t.input_ids)
    assert json.dumps(WEATHER) in text  # the tools reach the template, in the prompt
    assert trained(tok, t) == (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call><|end|>\n'
        "Sunny in Paris, rain in Rome.<|end|>\n"
    )


def test_legacy_functions_render_as_tools(jsonl, tok):
    report, (conv,) = read_dataset(jsonl([LEGACY]), "t.jsonl")
    assert report.ok
    assert conv.tools == ({"type": "function", "function": WEATHER},)
    assert conv.messages[2].role == "tool" and conv.messages[2].name == "get_weather"
    t = tokenize_example(tok, conv, 1024)
    assert trained(tok, t).startswith(
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|end|>'
    )


def test_inference_prompt_renders_like_training(tok):
    """The engine passes bare function schemas and OpenAI's JSON-string arguments; the
    template renders them exactly as the training rows."""
    train = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tools=TOOLS, tokenize=False, add_generation_prompt=True
    )
    serve = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}],
        tools=[WEATHER],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert train == serve


def test_wire_messages_render_like_the_training_row(jsonl, tok):
    """An OpenAI request holding the row's history (JSON-string arguments), through
    core.data.tools' template_messages / template_tools, renders as the row trains."""
    _, (conv,) = read_dataset(jsonl([PARALLEL]), "t.jsonl")
    training = tok.decode(tokenize_example(tok, conv, 1024).input_ids)
    wire = template_messages([{k: v for k, v in m.items()} for m in PARALLEL["messages"]])
    assert wire[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    serving = tok.apply_chat_template(wire, tokenize=False, **template_tools(TOOLS))
    assert serving == training


def bad(patch: dict, **row) -> dict:
    """PARALLEL with message fields replaced (`patch`: index -> fields) and row fields set."""
    out = json.loads(json.dumps(PARALLEL))
    for i, fields in patch.items():
        out["messages"][i].update(fields)
    return {**out, **row}


NOPE = {"id": "a", "type": "function", "function": {"name": "nope", "arguments": "{}"}}
BAD_ARGS = {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{x"}}
UNNAMED = [{"type": "function", "function": {"description": "x"}}]
NAMELESS_RESULT = {"role": "function", "content": "x"}


@pytest.mark.parametrize(
    ("row", "field", "code"),
    [
        (
            bad({1: {"tool_calls": [NOPE]}}),
            "messages[1].tool_calls[0].function.name",
            "unknown_tool",
        ),
        (bad({}, parallel_tool_calls=False), "messages[1].tool_calls", "parallel_tool_calls"),
        (
            bad({1: {"tool_calls": [BAD_ARGS]}}),
            "messages[1].tool_calls[0].function.arguments",
            "invalid_json",
        ),
        (bad({2: {"tool_call_id": "zzz"}}), "messages[2].tool_call_id", "unknown_tool_call"),
        (bad({}, tools=UNNAMED), "tools[0].function.name", "missing_field"),
        (
            {
                **LEGACY,
                "messages": [*LEGACY["messages"][:2], NAMELESS_RESULT, LEGACY["messages"][3]],
            },
            "messages[2].name",
            "missing_field",
        ),
    ],
)
def test_unfaithful_rows_are_errors_naming_line_and_field(jsonl, row, field, code):
    fine = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    report = validate_dataset(jsonl([fine, row]), "t.jsonl")
    first = report.errors[0]
    assert (first.line, first.field, first.code) == (2, field, code)


def test_a_template_without_tools_is_refused_not_trained_empty(jsonl):
    plain = build_tokenizer()
    plain.chat_template = (
        "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    _, examples = read_dataset(jsonl([PARALLEL]), "t.jsonl")
    with pytest.raises(UnfaithfulRender) as info:
        tokenize_example(plain, examples[0], 1024)
    assert (info.value.line, info.value.field) == (1, "tools[0]")
    no_tools = Conversation(examples[0].messages, line=1)  # the calls alone: dropped too
    with pytest.raises(UnfaithfulRender) as info:
        tokenize_example(plain, no_tools, 1024)
    assert info.value.field == "messages[1].tool_calls[0]"
