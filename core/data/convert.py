"""Per-format conversion of one raw record into normalised examples, checking it on the way.

Each converter takes the record and a RowLog bound to its line, logs every problem it finds
(with a field path such as `messages[2].content`), and returns the examples; the caller drops
them when the row failed. Checking and converting in one pass keeps the rules for a format in
one place. Preference and ranked formats live in preference.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.data.ecosystem import (
    convert_input_output,
    convert_tokenized,
    sharegpt_call,
    sharegpt_tools,
)
from core.data.examples import (
    Conversation,
    Example,
    LabeledText,
    Message,
    PromptExample,
    Role,
    TextExample,
)
from core.data.messages import get_str, parse_messages, parse_prompt
from core.data.preference import convert_preference, convert_ranked
from core.data.readers import type_name
from core.data.report import Code, DatasetFormat, RowLog
from core.data.tools import check_conversation, parse_parallel, parse_tools

Converter = Callable[[dict[str, Any], RowLog], list[Example]]

SHAREGPT_ROLES = {
    "human": Role.USER,
    "user": Role.USER,
    "gpt": Role.ASSISTANT,
    "assistant": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "tool": Role.TOOL,
    "function": Role.TOOL,
    "observation": Role.TOOL,  # LLaMA-Factory: a tool's result
    "function_call": Role.ASSISTANT,  # LLaMA-Factory: the assistant's call, as JSON
}
_LLAMAFACTORY = frozenset({"function_call", "observation"})


def _check_supervised(
    messages: tuple[Message, ...], path: str, log: RowLog, role_key: str = "role"
) -> None:
    """A supervised conversation must end on an assistant turn (the target) and train on at
    least one: otherwise the example contributes no loss, a silent waste."""
    if messages[-1].role != Role.ASSISTANT:
        log.error(
            f"{path}[{len(messages) - 1}].{role_key}",
            Code.LAST_TURN_NOT_ASSISTANT,
            f"the last message must be from the assistant, got {messages[-1].role!r}",
        )
    elif not any(m.role == Role.ASSISTANT and m.weight != 0 for m in messages):
        log.error(
            path,
            Code.NO_TRAINABLE_TURN,
            "every assistant message has weight 0: nothing to train on",
        )


def convert_chat(data: dict[str, Any], log: RowLog) -> list[Example]:
    messages = parse_messages(data.get("messages"), "messages", log, allow_weight=True)
    tools = parse_tools(data, log)
    parallel = parse_parallel(data, log)
    if messages is None:
        return []
    _check_supervised(messages, "messages", log)
    check_conversation(messages, tools, parallel, log)
    return [Conversation(messages, line=log.line, tools=tools, parallel_tool_calls=parallel)]


def convert_prompt_completion(data: dict[str, Any], log: RowLog) -> list[Example]:
    prompt = get_str(data, "prompt", log)
    completion = get_str(data, "completion", log)
    if prompt is None or completion is None:
        return []
    return [
        Conversation(
            (Message(Role.USER.value, prompt), Message(Role.ASSISTANT.value, completion)),
            line=log.line,
        )
    ]


def convert_alpaca(data: dict[str, Any], log: RowLog) -> list[Example]:
    instruction = get_str(data, "instruction", log)
    extra = get_str(data, "input", log, required=False, empty_code=None)
    output = get_str(data, "output", log)
    if instruction is None or output is None:
        return []
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    return [
        Conversation(
            (Message(Role.USER.value, prompt), Message(Role.ASSISTANT.value, output)), line=log.line
        )
    ]


def convert_sharegpt(data: dict[str, Any], log: RowLog) -> list[Example]:
    """ShareGPT `conversations` (from/value), with LLaMA-Factory's extras: `function_call`
    and `observation` turns, a top-level `system` prompt and `tools` (a JSON string)."""
    turns = data.get("conversations")
    if turns is None:
        log.error("conversations", Code.MISSING_FIELD, "missing required field 'conversations'")
        return []
    if not isinstance(turns, list):
        log.error("conversations", Code.WRONG_TYPE, f"must be a list, got {type_name(turns)}")
        return []
    if not turns:
        log.error("conversations", Code.EMPTY_MESSAGES, "must contain at least one turn")
        return []
    tools = sharegpt_tools(data, log)
    system = get_str(data, "system", log, required=False, empty_code=None)
    messages: list[Message] = []
    llamafactory = bool(tools or system)
    for i, turn in enumerate(turns):
        path = f"conversations[{i}]"
        if not isinstance(turn, dict):
            log.error(path, Code.WRONG_TYPE, f"a turn must be an object, got {type_name(turn)}")
            continue
        speaker = get_str(turn, "from", log, f"{path}.from")
        value = get_str(turn, "value", log, f"{path}.value")
        if speaker is not None and speaker not in SHAREGPT_ROLES:
            log.error(
                f"{path}.from",
                Code.UNKNOWN_ROLE,
                f"unknown speaker {speaker!r}; expected one of {', '.join(SHAREGPT_ROLES)}",
            )
        elif speaker == "function_call" and value is not None:
            call = sharegpt_call(value, f"{path}.value", log, i)
            messages += [call] if call else []
        elif speaker is not None and value is not None:
            messages.append(Message(SHAREGPT_ROLES[speaker].value, value))
        llamafactory = llamafactory or speaker in _LLAMAFACTORY
    if log.failed:
        return []
    log.shape = "llamafactory_sharegpt" if llamafactory else "sharegpt"
    _check_supervised(tuple(messages), "conversations", log, role_key="from")
    check_conversation(tuple(messages), tools, None, log, "conversations")
    if system:  # after the checks, so their paths index `conversations` as written
        messages.insert(0, Message(Role.SYSTEM.value, system))
    return [Conversation(tuple(messages), line=log.line, tools=tools)]


def convert_text(data: dict[str, Any], log: RowLog) -> list[Example]:
    text = get_str(data, "text", log)
    return [] if text is None else [TextExample(text, line=log.line)]


def convert_classification(data: dict[str, Any], log: RowLog) -> list[Example]:
    text = get_str(data, "text", log)
    pair = get_str(data, "text_pair", log, required=False)
    group = get_str(data, "group", log, required=False)  # the fairness report's groups
    label = data.get("label")
    if label is None:
        log.error("label", Code.MISSING_FIELD, "missing required field 'label'")
    elif isinstance(label, bool) or not isinstance(label, str | int):
        log.error(
            "label", Code.WRONG_TYPE, f"must be a string or an integer, got {type_name(label)}"
        )
    elif isinstance(label, str) and not label.strip():
        log.error("label", Code.EMPTY_LABEL, "must not be empty")
    if log.failed or text is None:
        return []
    return [LabeledText(text, str(label), text_pair=pair, line=log.line, group=group)]


_PROMPT_KEYS = frozenset({"prompt", "messages", "reference", "reference_answer"})


def convert_prompts(data: dict[str, Any], log: RowLog) -> list[Example]:
    """A prompt for online RL: the policy writes the answer, so it must end on a user turn."""
    if "messages" in data:
        prompt = parse_messages(data["messages"], "messages", log, allow_weight=False)
        if prompt is not None and prompt[-1].role != Role.USER:
            log.error(
                f"messages[{len(prompt) - 1}].role",
                Code.LAST_TURN_NOT_USER,
                f"a prompt must end with a user message, got {prompt[-1].role!r}",
            )
    else:
        prompt = parse_prompt(data.get("prompt"), "prompt", log)
    key = "reference" if "reference" in data else "reference_answer"
    reference = data.get(key)
    if reference is not None:
        if isinstance(reference, bool) or not isinstance(reference, str | int | float):
            log.error(
                key, Code.WRONG_TYPE, f"must be a string or a number, got {type_name(reference)}"
            )
        reference = str(reference)
    if log.failed or prompt is None:
        return []
    extra = {k: v for k, v in data.items() if k not in _PROMPT_KEYS}
    return [PromptExample(prompt, reference=reference, extra=extra, line=log.line)]


CONVERTERS: dict[DatasetFormat, Converter] = {
    DatasetFormat.CHAT: convert_chat,
    DatasetFormat.PROMPT_COMPLETION: convert_prompt_completion,
    DatasetFormat.ALPACA: convert_alpaca,
    DatasetFormat.SHAREGPT: convert_sharegpt,
    DatasetFormat.TEXT: convert_text,
    DatasetFormat.PREFERENCE: convert_preference,
    DatasetFormat.RANKED: convert_ranked,
    DatasetFormat.CLASSIFICATION: convert_classification,
    DatasetFormat.PROMPTS: convert_prompts,
    DatasetFormat.TOKENIZED: convert_tokenized,
    DatasetFormat.INPUT_OUTPUT: convert_input_output,
}
