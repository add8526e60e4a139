"""Dataset shapes from the open ecosystem, converted into Lathe's examples:

- pre-tokenized rows (`input_ids`, optional `labels` and `attention_mask`, as Hugging Face
  datasets hold them): trained as given; ids are checked against the base model's vocabulary
  when the job tokenizes (core.training.tokenize);
- Axolotl `input_output` rows (`segments: [{text, label}]`): the texts joined as written,
  trained where `label` is true;
- LLaMA-Factory ShareGPT extras (`function_call` / `observation` turns, a top-level `system`
  and a `tools` JSON string): see convert_sharegpt in convert.py, which calls sharegpt_turn.

Whole-conversation preference rows (HH-RLHF, UltraFeedback-binarized) live in preference.py.
"""

from __future__ import annotations

import json
from typing import Any

from core.data.examples import Example, Message, Role, Segments, TokenIds
from core.data.readers import type_name
from core.data.report import Code, RowLog
from core.data.tools import decode_arguments, parse_tools

IGNORE = -100
"""The label of an untrained position (Hugging Face's convention)."""


def convert_tokenized(data: dict[str, Any], log: RowLog) -> list[Example]:
    log.shape = "pretokenized"
    ids = _ints(data.get("input_ids"), "input_ids", log, frozenset())
    labels = ids
    if "labels" in data:
        labels = _ints(data.get("labels"), "labels", log, frozenset({IGNORE}))
    mask = None
    if "attention_mask" in data:
        mask = _ints(data.get("attention_mask"), "attention_mask", log, frozenset())
    if ids is None or labels is None or ("attention_mask" in data and mask is None):
        return []
    for key, other in (("labels", labels), ("attention_mask", mask)):
        if other is not None and len(other) != len(ids):
            log.error(
                key,
                Code.LENGTH_MISMATCH,
                f"has {len(other)} entries, input_ids has {len(ids)}",
            )
            return []
    for k, (tid, label) in enumerate(zip(ids, labels, strict=True)):
        if label not in (tid, IGNORE):
            log.error(
                f"labels[{k}]",
                Code.WRONG_TYPE,
                f"must be input_ids[{k}] ({tid}) or -100, got {label}: labels are the input "
                "ids themselves (the model shifts them), -100 where not trained",
            )
            return []
    start, end = _unmasked(mask, log) if mask is not None else (0, len(ids))
    if log.failed:
        return []
    ids, labels = ids[start:end], labels[start:end]
    if not any(label != IGNORE for label in labels):
        log.error("labels", Code.NO_TRAINABLE_TURN, "every label is -100: nothing to train on")
        return []
    return [TokenIds(tuple(ids), tuple(labels), line=log.line)]


def _ints(value: Any, key: str, log: RowLog, allowed: frozenset[int]) -> list[int] | None:
    """A non-empty list of non-negative integers (or one of `allowed`)."""
    if not isinstance(value, list) or not value:
        log.error(key, Code.WRONG_TYPE, f"must be a non-empty list of ints, got {type_name(value)}")
        return None
    for k, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int) or (v < 0 and v not in allowed):
            log.error(f"{key}[{k}]", Code.WRONG_TYPE, f"must be a non-negative integer, got {v!r}")
            return None
    return value


def _unmasked(mask: list[int], log: RowLog) -> tuple[int, int]:
    """The one run of 1s in an attention mask: padding on either side is dropped (training is
    padding-free); a 0 between 1s would change what the model sees, so it is refused."""
    if any(v not in (0, 1) for v in mask):
        log.error("attention_mask", Code.WRONG_TYPE, "must hold only 0 and 1")
        return 0, 0
    ones = [k for k, v in enumerate(mask) if v == 1]
    if not ones:
        log.error("attention_mask", Code.NO_TRAINABLE_TURN, "every position is masked out")
        return 0, 0
    start, end = ones[0], ones[-1] + 1
    if len(ones) != end - start:
        log.error(
            "attention_mask",
            Code.WRONG_TYPE,
            "the 1s must be one contiguous run (padding only at the start or the end)",
        )
    return start, end


def convert_input_output(data: dict[str, Any], log: RowLog) -> list[Example]:
    log.shape = "axolotl_input_output"
    segments = data.get("segments")
    if not isinstance(segments, list) or not segments:
        got = type_name(segments)
        log.error("segments", Code.WRONG_TYPE, f"must be a non-empty list, got {got}")
        return []
    out: list[tuple[str, bool]] = []
    for k, seg in enumerate(segments):
        path = f"segments[{k}]"
        if not isinstance(seg, dict):
            log.error(path, Code.WRONG_TYPE, f"must be an object, got {type_name(seg)}")
            continue
        text, label = seg.get("text"), seg.get("label")
        if not isinstance(text, str):
            log.error(f"{path}.text", Code.WRONG_TYPE, f"must be a string, got {type_name(text)}")
        if not isinstance(label, bool):
            got = type_name(label)
            log.error(f"{path}.label", Code.WRONG_TYPE, f"must be a boolean, got {got}")
        if isinstance(text, str) and isinstance(label, bool):
            out.append((text, label))
    if log.failed:
        return []
    if not any(label and text.strip() for text, label in out):
        log.error("segments", Code.NO_TRAINABLE_TURN, "no segment with label true has text")
        return []
    return [Segments(tuple(out), line=log.line)]


def sharegpt_tools(data: dict[str, Any], log: RowLog) -> tuple[dict, ...] | None:
    """LLaMA-Factory's `tools`: a JSON string (or list) of function schemas, or of OpenAI
    tool objects."""
    value = data.get("tools")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            log.error("tools", Code.INVALID_JSON, f"must be a JSON list of functions: {e}")
            return None
    if isinstance(value, list) and all(isinstance(t, dict) and "function" in t for t in value):
        return parse_tools({"tools": value}, log)
    return parse_tools({"functions": value}, log)


def sharegpt_call(value: str, path: str, log: RowLog, turn: int) -> Message | None:
    """A `function_call` turn: the assistant's call(s), `{"name", "arguments"}` as JSON (a
    list of them for parallel calls)."""
    try:
        payload = json.loads(value)
    except ValueError as e:
        log.error(path, Code.INVALID_JSON, f"a function_call turn must hold JSON: {e}")
        return None
    payloads = payload if isinstance(payload, list) else [payload]
    calls = []
    for k, p in enumerate(payloads):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            log.error(path, Code.WRONG_TYPE, "a call must be {'name': ..., 'arguments': ...}")
            return None
        arguments = decode_arguments(p.get("arguments"), path, log)
        if arguments is None:
            return None
        calls.append(
            {
                "id": f"call_{turn}_{k}",
                "type": "function",
                "function": {"name": p["name"], "arguments": arguments},
            }
        )
    return Message(Role.ASSISTANT.value, "", tool_calls=tuple(calls))
