"""Normalised preference and prompt examples in the shapes TRL's trainers and graders read.

Conversations stay conversations (lists of {role, content}) so each trainer renders them with
the model's own chat template, exactly as inference will.
"""

from __future__ import annotations

import json
from typing import Any

from core.data.examples import PreferencePair, PromptExample
from core.training.tokenize import chat_dicts as chat


def preference_rows(pairs: list[PreferencePair]) -> list[dict[str, Any]]:
    """TRL's conversational preference format: prompt, chosen and rejected message lists."""
    return [
        {"prompt": chat(p.prompt), "chosen": chat(p.chosen), "rejected": chat(p.rejected)}
        for p in pairs
    ]


def preference_dataset(pairs: list[PreferencePair]) -> Any:
    """A datasets.Dataset of `pairs` in TRL's conversational format, or None without pairs."""
    from datasets import Dataset

    return Dataset.from_list(preference_rows(pairs)) if pairs else None


def prompt_messages(example: PromptExample) -> list[dict[str, str]]:
    return chat(example.prompt)


def render_prompt(tokenizer: Any, example: PromptExample) -> str:
    """The prompt as the policy sees it: the chat template with the assistant turn opened."""
    return tokenizer.apply_chat_template(
        prompt_messages(example), tokenize=False, add_generation_prompt=True
    )


def grader_item(example: PromptExample) -> dict[str, Any]:
    """The dataset row a grader's `{{item.*}}` templates read: the row's own fields, its
    messages and its reference answer (under both names the prompts format accepts)."""
    item: dict[str, Any] = {**example.extra, "messages": prompt_messages(example)}
    if example.reference is not None:
        item.setdefault("reference", example.reference)
        item.setdefault("reference_answer", example.reference)
    return item


def item_json(example: PromptExample) -> str:
    """A grader item as a dataset cell: JSON keeps rows of different shapes in one column."""
    return json.dumps(grader_item(example))


def fitting_prompts(
    tokenizer: Any, examples: list[PromptExample], max_len: int
) -> tuple[list[PromptExample], int]:
    """The prompts whose rendering fits `max_len` tokens, and how many did not: a cut prompt
    would be a different question, so it is left out (and reported) instead."""
    kept = [
        ex
        for ex in examples
        if len(tokenizer(render_prompt(tokenizer, ex), add_special_tokens=False)["input_ids"])
        <= max_len
    ]
    return kept, len(examples) - len(kept)
