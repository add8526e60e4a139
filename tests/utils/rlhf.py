"""Synthetic preference and prompt data for the RLHF tests: "answers with digits are better".

The tiny model's vocabulary has single tokens for the digits and for common words, so a reward
model separates the two kinds of answer within a few steps, and a policy sampling from a random
init already emits a digit now and then: the reward is easy to learn, yet not given.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

QUESTIONS = [
    "Hi",
    "Name a number.",
    "Count to three.",
    "Say something.",
    "Pick a color.",
    "Name a day.",
    "Tell me a fact.",
    "Name a fruit.",
    "What is the answer?",
    "Translate good morning.",
    "Give me a list.",
    "What do you see?",
]
HELD_OUT = ["Describe the sky.", "Name a month.", "Any news?", "What is next?"]
WORDS = [
    "red",
    "blue",
    "green",
    "apple",
    "banana",
    "Monday",
    "Friday",
    "dog",
    "fox",
    "Paris",
    "yes",
    "maybe",
]

DIGIT_GRADER = {
    "type": "regex",
    "name": "has_digit",
    "input": "{{sample.output_text}}",
    "pattern": r"\d",
}


def _answer(rng: random.Random, digits: bool) -> str:
    pool = [str(d) for d in range(10)] if digits else WORDS
    return " ".join(rng.choice(pool) for _ in range(3))


def preference_rows(questions: list[str], seed: int = 0, per_question: int = 1) -> list[dict]:
    """OpenAI DPO rows: the preferred answer is digits, the other words."""
    rng = random.Random(seed)
    return [
        {
            "input": {"messages": [{"role": "user", "content": q}]},
            "preferred_output": [{"role": "assistant", "content": _answer(rng, True)}],
            "non_preferred_output": [{"role": "assistant", "content": _answer(rng, False)}],
        }
        for q in questions
        for _ in range(per_question)
    ]


def prompt_rows(questions: list[str]) -> list[dict]:
    return [{"messages": [{"role": "user", "content": q}]} for q in questions]


def chat_rows(questions: list[str], seed: int = 0) -> list[dict]:
    """SFT rows that already lean towards digit answers."""
    rng = random.Random(seed)
    return [
        {
            "messages": [
                {"role": "user", "content": q},
                {"role": "assistant", "content": _answer(rng, True)},
            ]
        }
        for q in questions
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def reply_logprob(model, tokenizer, prompt: list[dict], reply: str) -> float:
    """log p(reply | prompt) under `model`, the reply rendered as the chat template does."""
    import torch

    context = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        prompt + [{"role": "assistant", "content": reply}], tokenize=False
    )
    ids = tokenizer(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
    start = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logprobs = logits.log_softmax(-1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logprobs[start - 1 :].sum())


def preference_margin(model, tokenizer, rows: list[dict]) -> float:
    """Mean log-probability margin of the preferred over the other reply on OpenAI DPO rows."""
    margins = [
        reply_logprob(model, tokenizer, r["input"]["messages"], r["preferred_output"][0]["content"])
        - reply_logprob(
            model, tokenizer, r["input"]["messages"], r["non_preferred_output"][0]["content"]
        )
        for r in rows
    ]
    return sum(margins) / len(margins)
