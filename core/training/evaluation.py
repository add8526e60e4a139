"""The same validation metrics for the starting model and the tuned one, so a job shows how
much fine-tuning helped. The starting model is the untuned base — or, for a job continuing an
`ft:` model, that model as loaded (the parent's adapter is the starting point, not the base).

Loss, token accuracy and perplexity come from the trainer's own evaluation loop (the code that
computes valid_loss during training). The base is measured before the first step: a peft model
with its adapter disabled (`disable_adapter()` also bypasses soft prompts), a full fine-tune
before any weight moved. Optional text-similarity metrics (ROUGE-L, BLEU, ... from
`core.graders.similarity`) score greedy generations against the reference answers of up to
`GENERATION_LIMIT` validation conversations. A `data.test_split` test set is scored the same
way (test_* keys), only before and after training: it is never the trainer's eval dataset.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from core.data.examples import Conversation, Example

GENERATION_LIMIT = 32
"""Generation is slow next to a forward pass: a fixed sample keeps evaluation cheap."""


def validation_metrics(
    trainer: Any, dataset: Any = None, prefix: str = "valid"
) -> dict[str, float]:
    """`{prefix}_loss`, ... on `dataset` (None: the trainer's validation set; a test set is
    passed here instead of to the trainer, so no evaluation during training sees it)."""
    raw = trainer.evaluate(eval_dataset=dataset)
    out = {f"{prefix}_loss": float(raw["eval_loss"])}
    if "eval_mean_token_accuracy" in raw:
        out[f"{prefix}_mean_token_accuracy"] = float(raw["eval_mean_token_accuracy"])
    out[f"{prefix}_perplexity"] = math.exp(min(out[f"{prefix}_loss"], 50))
    return out


@contextmanager
def base_weights(model: Any) -> Iterator[Any]:
    """Yields the module that computes what the untuned base computes."""
    if not hasattr(model, "disable_adapter"):
        yield model  # full fine-tuning: only meaningful before training starts
        return
    with model.disable_adapter():
        # get_base_model() is the plain transformer for soft prompts; for LoRA/IA3 the injected
        # layers are bypassed while the adapter is disabled.
        yield model.get_base_model()


def generation_pairs(examples: list[Example], limit: int = GENERATION_LIMIT) -> list[tuple]:
    """(prompt messages, reference answer) for conversations that end in an assistant turn."""
    pairs = []
    for ex in examples:
        if not isinstance(ex, Conversation) or len(ex.messages) < 2:
            continue
        last = ex.messages[-1]
        if last.role == "assistant" and last.content:
            prompt = [{"role": m.role, "content": m.content} for m in ex.messages[:-1]]
            pairs.append((prompt, last.content))
        if len(pairs) == limit:
            break
    return pairs


def generation_scores(
    model: Any, tokenizer: Any, pairs: list[tuple], metrics: list[str]
) -> dict[str, float]:
    """Mean similarity of greedy generations to the references, per metric."""
    import torch

    from core.graders.similarity import similarity

    if not pairs or not metrics:
        return {}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = dict.fromkeys(metrics, 0.0)
    try:
        for prompt, reference in pairs:
            enc = tokenizer.apply_chat_template(
                prompt, add_generation_prompt=True, return_dict=True, return_tensors="pt"
            ).to(device)
            budget = len(tokenizer(reference, add_special_tokens=False)["input_ids"])
            with torch.inference_mode():
                out = model.generate(
                    input_ids=enc["input_ids"],
                    attention_mask=enc["attention_mask"],
                    max_new_tokens=min(256, 2 * budget + 8),
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            text = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for metric in metrics:
                totals[metric] += similarity(metric, text.strip(), reference)
    finally:
        model.train(was_training)
    return {metric: total / len(pairs) for metric, total in totals.items()}


def evaluate(
    trainer: Any,
    model: Any,
    tokenizer: Any,
    pairs: list[tuple],
    metrics: list[str],
    base: bool,
    dataset: Any = None,
    prefix: str = "valid",
) -> dict[str, float]:
    """Validation metrics (or, with `dataset`, `prefix`ed metrics on it) of the base
    (`base=True`) or of the model as it is now."""
    with base_weights(model) if base else nullcontext(model) as target:
        scores = validation_metrics(trainer, dataset, prefix)
        scores.update(generation_scores(target, tokenizer, pairs, metrics))
    return scores


def job_evaluation(
    validation: dict[str, Any] | None, test: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The job's `evaluation`: the validation comparison's keys at the top level (as before
    test splits existed), `data.test_split`'s {"base", "tuned", "examples"} under "test"."""
    if validation is None and test is None:
        return None
    return {**(validation or {}), **({"test": test} if test is not None else {})}
