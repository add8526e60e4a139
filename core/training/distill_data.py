"""The rows distillation trains and evaluates on, and the teacher's answers for `sequence` mode.

Rows are tokenized exactly as supervised fine-tuning tokenizes them (core.training.tokenize:
the model's chat template, loss on trained assistant tokens only), so a distilled student and
an SFT'd one are scored on the same tokens. Each row also keeps its prompt (the tokens before
the first trained one): GKD's on-policy step lets the student complete it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from core.data.examples import Conversation
from core.training.tokenize import IGNORE, chat_dicts, tokenize_example


def same_tokenizer(a: Any, b: Any) -> bool:
    """Token distributions are comparable only over the same vocabulary, id for id."""
    return a.get_vocab() == b.get_vocab() and a.eos_token_id == b.eos_token_id


def rows(tokenizer: Any, examples: list, max_len: int) -> tuple[list[dict[str, list[int]]], int]:
    """(rows with input_ids, labels and prompt_ids, how many examples were cut to max_len).
    Examples left with no trained token teach and measure nothing and are skipped."""
    out, truncated = [], 0
    for ex in examples:
        tok = tokenize_example(tokenizer, ex, max_len)
        truncated += tok.truncated
        first = next((i for i, label in enumerate(tok.labels) if label != IGNORE), None)
        if first is None or first == 0:
            continue
        out.append(
            {"input_ids": tok.input_ids, "labels": tok.labels, "prompt_ids": tok.input_ids[:first]}
        )
    return out, truncated


@dataclass
class Collator:
    """Right-padded input_ids / attention_mask / labels, and left-padded prompts (the names
    GKDTrainer reads), so completions sampled from the prompts all start at one column."""

    pad_id: int

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in batch)
        prompt_width = max(len(r["prompt_ids"]) for r in batch)

        def right(seq: list[int], fill: int) -> list[int]:
            return seq + [fill] * (width - len(seq))

        def left(seq: list[int], fill: int) -> list[int]:
            return [fill] * (prompt_width - len(seq)) + seq

        return {
            "input_ids": torch.tensor([right(r["input_ids"], self.pad_id) for r in batch]),
            "attention_mask": torch.tensor([right([1] * len(r["input_ids"]), 0) for r in batch]),
            "labels": torch.tensor([right(r["labels"], IGNORE) for r in batch]),
            "prompts": torch.tensor([left(r["prompt_ids"], self.pad_id) for r in batch]),
            "prompt_attention_mask": torch.tensor(
                [left([1] * len(r["prompt_ids"]), 0) for r in batch]
            ),
        }


def answerable(examples: list) -> list[Conversation]:
    """Conversations whose last turn is a trained assistant answer: the teacher can replace it."""
    return [
        ex
        for ex in examples
        if isinstance(ex, Conversation)
        and len(ex.messages) >= 2
        and ex.messages[-1].role == "assistant"
        and ex.messages[-1].weight != 0
    ]


def teacher_answers(
    teacher: Any, tokenizer: Any, examples: list[Conversation], max_new_tokens: int, batch: int = 8
) -> list[Conversation]:
    """The examples with their last answer replaced by the teacher's greedy one (Kim & Rush's
    sequence-level KD). Prompts are left-padded as core.rlhf.rollout's sampler pads them."""
    import torch

    from core.rlhf.rollout import mask_after_eos

    device = next(teacher.parameters()).device
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out: list[Conversation] = []
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        for start in range(0, len(examples), batch):
            chunk = examples[start : start + batch]
            prompts = [
                tokenizer.apply_chat_template(
                    chat_dicts(ex.messages[:-1]), tokenize=False, add_generation_prompt=True
                )
                for ex in chunk
            ]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                ids = teacher.generate(
                    input_ids=enc["input_ids"].to(device),
                    attention_mask=enc["attention_mask"].to(device),
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    eos_token_id=eos,
                    pad_token_id=pad,
                )
            answers, mask, _ = mask_after_eos(ids[:, enc["input_ids"].shape[1] :], [eos], pad)
            for ex, row, keep in zip(chunk, answers, mask, strict=True):
                text = tokenizer.decode(row[keep.bool()], skip_special_tokens=True).strip()
                last = replace(ex.messages[-1], content=text)
                out.append(replace(ex, messages=(*ex.messages[:-1], last)))
    finally:
        tokenizer.padding_side = side
    return out
