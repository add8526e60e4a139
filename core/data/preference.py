"""Preference data: OpenAI DPO rows, prompt/chosen/rejected rows, and ranked completions.

Ranked rows are `{"prompt", "completions": [...], "ranking": [...]}` where `ranking` lists
completion indices best first, e.g. `[2, 0, 1]` means completion 2 beats 0 beats 1. It must be
a permutation of all indices (no ties, none left out): anything looser is ambiguous, and a
typo'd ranking silently trains the model the wrong way round. A ranking of n completions
expands to its n(n-1)/2 implied pairs, best-first order.
"""

from __future__ import annotations

import re
from typing import Any

from core.data.examples import Example, Message, PreferencePair, Role
from core.data.messages import parse_messages, parse_prompt, parse_reply
from core.data.readers import type_name
from core.data.report import Code, RowLog


def _check_prompt(prompt: tuple[Message, ...] | None, path: str, log: RowLog) -> None:
    """The completions continue the prompt as the assistant, so the prompt must not already
    end with an assistant turn (that would train on two assistant turns in a row)."""
    if prompt and prompt[-1].role == Role.ASSISTANT:
        log.error(
            f"{path}[{len(prompt) - 1}].role",
            Code.PROMPT_ENDS_WITH_ASSISTANT,
            "the prompt must not end with an assistant message",
        )


def convert_preference(data: dict[str, Any], log: RowLog) -> list[Example]:
    if _whole_conversations(data):
        return convert_conversation_pair(data, log)
    openai_style = (
        "preferred_output" in data
        or "non_preferred_output" in data
        or ("input" in data and "prompt" not in data)
    )
    prompt: tuple[Message, ...] | None = None
    if openai_style:
        prompt_path, chosen_key, rejected_key = (
            "input.messages",
            "preferred_output",
            "non_preferred_output",
        )
        inp = data.get("input")
        if inp is None:
            log.error("input", Code.MISSING_FIELD, "missing required field 'input'")
        elif not isinstance(inp, dict):
            log.error(
                "input", Code.WRONG_TYPE, f"must be an object with 'messages', got {type_name(inp)}"
            )
        else:
            prompt = parse_messages(inp.get("messages"), prompt_path, log, allow_weight=False)
    else:
        prompt_path, chosen_key, rejected_key = "prompt", "chosen", "rejected"
        prompt = parse_prompt(data.get("prompt"), prompt_path, log)
    _check_prompt(prompt, prompt_path, log)
    chosen = parse_reply(data.get(chosen_key), chosen_key, log, Code.EMPTY_CHOSEN)
    rejected = parse_reply(data.get(rejected_key), rejected_key, log, Code.EMPTY_REJECTED)
    if log.failed or prompt is None or chosen is None or rejected is None:
        return []
    if _same(chosen, rejected):
        log.warn(
            rejected_key,
            Code.IDENTICAL_PAIR,
            f"{chosen_key} and {rejected_key} are identical: the pair teaches nothing",
        )
    return [PreferencePair(prompt, chosen, rejected, line=log.line)]


_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def _whole_conversations(data: dict[str, Any]) -> bool:
    """`chosen`/`rejected` that hold the whole conversation (prompt included), as HH-RLHF
    (`"\n\nHuman: ... \n\nAssistant: ..."` strings) and UltraFeedback-binarized (message lists
    starting with the user's turn) ship them."""
    chosen = data.get("chosen")
    if isinstance(chosen, str):
        return "prompt" not in data and chosen.lstrip("\n").startswith("Human:")
    return (
        isinstance(chosen, list)
        and bool(chosen)
        and isinstance(chosen[0], dict)
        and chosen[0].get("role") not in (None, Role.ASSISTANT)
    )


def convert_conversation_pair(data: dict[str, Any], log: RowLog) -> list[Example]:
    """Both conversations must share every turn but the last (the prompt) and end on the
    assistant's reply: the pair is that prompt with the two replies. A `prompt` given beside
    them (UltraFeedback) must be the prompt's last user turn."""
    hh = isinstance(data.get("chosen"), str)
    log.shape = "hh_rlhf" if hh else "ultrafeedback" if "prompt" in data else "conversations"
    convs = []
    for key, empty in (("chosen", Code.EMPTY_CHOSEN), ("rejected", Code.EMPTY_REJECTED)):
        value = data.get(key)
        conv = (
            _hh_messages(value, key, log, empty)
            if isinstance(value, str)
            else parse_messages(value, key, log, allow_weight=False)
        )
        if conv is not None and (len(conv) < 2 or conv[-1].role != Role.ASSISTANT):
            log.error(
                f"{key}[{len(conv) - 1}].role",
                Code.LAST_TURN_NOT_ASSISTANT,
                "a whole conversation must be a prompt followed by the assistant's reply",
            )
        convs.append(conv)
    chosen, rejected = convs
    if log.failed or chosen is None or rejected is None:
        return []
    prompt = chosen[:-1]
    if rejected[:-1] != prompt:
        log.error(
            "rejected",
            Code.PROMPT_MISMATCH,
            "chosen and rejected must share every turn but the last (the prompt)",
        )
        return []
    _check_given_prompt(data.get("prompt"), prompt, log)
    _check_prompt(prompt, "chosen", log)
    if log.failed:
        return []
    if _same(chosen[-1:], rejected[-1:]):
        log.warn("rejected", Code.IDENTICAL_PAIR, "chosen and rejected are identical")
    return [PreferencePair(prompt, chosen[-1:], rejected[-1:], line=log.line)]


def _hh_messages(text: str, key: str, log: RowLog, empty: Code) -> tuple[Message, ...] | None:
    if text.startswith("Human:"):
        text = "\n\n" + text
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        log.error(key, Code.WRONG_TYPE, "an HH-RLHF conversation starts with '\\n\\nHuman: '")
        return None
    messages = []
    for k in range(1, len(parts), 2):
        content = parts[k + 1].strip()
        if not content:
            log.error(key, empty, f"turn {k // 2} ({parts[k]}) is empty")
            return None
        role = Role.USER if parts[k] == "Human" else Role.ASSISTANT
        messages.append(Message(role.value, content))
    return tuple(messages)


def _check_given_prompt(value: Any, prompt: tuple[Message, ...], log: RowLog) -> None:
    if value is None:
        return
    users = [m.content for m in prompt if m.role == Role.USER]
    if isinstance(value, str):
        ok = bool(users) and users[-1].strip() == value.strip()
    else:
        ok = parse_messages(value, "prompt", log, allow_weight=False) == prompt
    if not ok and not log.failed:
        log.error(
            "prompt",
            Code.PROMPT_MISMATCH,
            "prompt does not match the conversation's prompt turns in chosen and rejected",
        )


MAX_RANKED_COMPLETIONS = 32
"""Completions one ranked row may hold: n of them give n*(n-1)/2 pairs, so a single line of a
hundred thousand one-letter completions would be five billion examples."""


def convert_ranked(data: dict[str, Any], log: RowLog) -> list[Example]:
    prompt = parse_prompt(data.get("prompt"), "prompt", log)
    _check_prompt(prompt, "prompt", log)
    completions = data.get("completions")
    replies: list[tuple[Message, ...] | None] = []
    if completions is None:
        log.error("completions", Code.MISSING_FIELD, "missing required field 'completions'")
    elif not isinstance(completions, list):
        log.error("completions", Code.WRONG_TYPE, f"must be a list, got {type_name(completions)}")
    elif len(completions) < 2:
        log.error(
            "completions",
            Code.TOO_FEW_COMPLETIONS,
            f"at least 2 completions are needed to rank, got {len(completions)}",
        )
    elif len(completions) > MAX_RANKED_COMPLETIONS:
        log.error(
            "completions",
            Code.TOO_MANY_COMPLETIONS,
            f"at most {MAX_RANKED_COMPLETIONS} completions can be ranked in one row (n give "
            f"n*(n-1)/2 pairs), got {len(completions)}",
        )
    else:
        replies = [
            parse_reply(c, f"completions[{i}]", log, Code.EMPTY_CONTENT)
            for i, c in enumerate(completions)
        ]
    ranking = _ranking(data.get("ranking"), len(replies) if replies else None, log)
    if log.failed or prompt is None or ranking is None:
        return []
    ranked = [replies[i] for i in ranking]
    pairs: list[Example] = []
    for a in range(len(ranked)):
        for b in range(a + 1, len(ranked)):
            better, worse = ranked[a], ranked[b]
            assert better is not None and worse is not None  # log.failed otherwise
            if _same(better, worse):
                log.warn(
                    "completions",
                    Code.IDENTICAL_PAIR,
                    f"completions {ranking[a]} and {ranking[b]} are identical",
                )
            pairs.append(PreferencePair(prompt, better, worse, line=log.line))
    return pairs


def _ranking(value: Any, n: int | None, log: RowLog) -> list[int] | None:
    """The ranking as a list of completion indices, best first; strictly a permutation of
    range(n). `n` is None when the completions are already broken (only types are checked)."""
    if value is None:
        log.error("ranking", Code.MISSING_FIELD, "missing required field 'ranking'")
        return None
    if not isinstance(value, list):
        log.error(
            "ranking",
            Code.WRONG_TYPE,
            f"must be a list of completion indices, best first, got {type_name(value)}",
        )
        return None
    ok = True
    seen: set[int] = set()
    for i, index in enumerate(value):
        if isinstance(index, bool) or not isinstance(index, int):
            log.error(
                f"ranking[{i}]",
                Code.WRONG_TYPE,
                f"must be an integer index, got {type_name(index)}",
            )
            ok = False
        elif n is not None and not 0 <= index < n:
            log.error(
                f"ranking[{i}]",
                Code.INVALID_RANKING,
                f"index {index} is out of range: there are {n} completions (0-{n - 1})",
            )
            ok = False
        elif index in seen:
            log.error(f"ranking[{i}]", Code.INVALID_RANKING, f"index {index} appears twice")
            ok = False
        else:
            seen.add(index)
    if ok and n is not None and len(value) != n:
        log.error(
            "ranking",
            Code.INVALID_RANKING,
            f"must rank all {n} completions (a "
            f"permutation of their indices, best first), got {len(value)}",
        )
        ok = False
    return value if ok and n is not None else None


def _same(a: tuple[Message, ...], b: tuple[Message, ...]) -> bool:
    def key(ms: tuple[Message, ...]) -> list:
        return [(m.role, m.content.strip(), m.tool_calls) for m in ms]

    return key(a) == key(b)
