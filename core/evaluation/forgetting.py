"""Did fine-tuning forget what the base knew? The forgetting check.

A general set — `evaluation.general_file`, or Lathe's built-in one (the facts the builtin
`tiny-llama-pretrained` was pretrained on, core.tiny_pretrain.knowledge) — is scored on the
job's starting model and on the tuned model, with the same tokenizer and the same loss mask
as training (core.training.tokenize): mean loss per trained token and next-token accuracy.
The job reports both and their change; a loss rise above `evaluation.forgetting_threshold`
makes the job warn. Method-agnostic: it runs after any method whose result is a causal LM,
on the saved artifact, so it measures exactly the model that is published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.data.examples import Example, TextExample

MAX_LENGTH = 256
"""General examples are truncated to this many tokens: a cheap, fixed-cost check."""
MAX_EXAMPLES = 200
"""At most this many general examples are scored (the first ones of the file)."""
RANDOM_INIT = frozenset({"tiny-llama", "tiny-llama-64"})
"""Builtin bases with random weights: they know nothing to forget, so 'auto' skips them."""


def builtin_general_set() -> list[Example]:
    """Lathe's shipped general set: plain-text facts."""
    from core.tiny_pretrain import knowledge

    return [TextExample(text=fact) for fact in knowledge()]


def wanted(option: bool | str, base_model: str, general_file: str | None) -> bool:
    """`evaluation.forgetting_check`: true, false, or 'auto' (on unless the job starts from a
    random-init builtin and names no general_file)."""
    if option == "auto":
        return general_file is not None or base_model not in RANDOM_INIT
    return bool(option)


def score(model: Any, tokenizer: Any, examples: list[Example]) -> dict[str, float]:
    """Mean next-token loss and accuracy over the trained tokens of `examples`."""
    import torch

    from core.training.tokenize import IGNORE, tokenize_example

    device = next(model.parameters()).device
    loss_sum, correct, count = 0.0, 0, 0
    for example in examples[:MAX_EXAMPLES]:
        row = tokenize_example(tokenizer, example, MAX_LENGTH)
        if row.n_trained == 0 or len(row.input_ids) < 2:
            continue
        ids = torch.tensor([row.input_ids], device=device)
        labels = torch.tensor(row.labels[1:], device=device)
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, -len(row.input_ids) :][:-1].float()
        keep = labels != IGNORE
        loss = torch.nn.functional.cross_entropy(logits[keep], labels[keep], reduction="sum")
        loss_sum += float(loss)
        correct += int((logits[keep].argmax(-1) == labels[keep]).sum())
        count += int(keep.sum())
    if count == 0:
        return {"loss": float("nan"), "token_accuracy": float("nan"), "tokens": 0}
    return {"loss": loss_sum / count, "token_accuracy": correct / count, "tokens": count}


def report(
    base: dict[str, float], tuned: dict[str, float], threshold: float, source: str, n: int
) -> dict[str, Any]:
    """The job's `forgetting`: both scores, their change, and whether it crossed the line."""
    delta = {
        "loss": tuned["loss"] - base["loss"],
        "token_accuracy": tuned["token_accuracy"] - base["token_accuracy"],
    }
    return {
        "general_set": source,
        "examples": n,
        "base": base,
        "tuned": tuned,
        "delta": delta,
        "threshold": threshold,
        "exceeded": delta["loss"] > threshold,
    }


def load_start(base_path: Path, parent_artifact: Path | None, device: str):
    """The job's starting model: the base, or base + the `ft:` parent's artifact."""
    from transformers import AutoModelForCausalLM

    from core.model_store import load_artifact

    if parent_artifact is not None:
        return load_artifact(base_path, parent_artifact, device=device)[0]
    return AutoModelForCausalLM.from_pretrained(base_path).to(device).eval()


def check(
    base_path: Path,
    parent_artifact: Path | None,
    artifact_dir: Path,
    examples: list[Example],
    *,
    threshold: float,
    source: str,
    device: str = "cpu",
) -> dict[str, Any]:
    """Score the starting model (the base, or base + the `ft:` parent's artifact) and the
    tuned artifact on `examples`; one model in memory at a time."""
    from core.model_store import load_artifact

    tuned_model, tokenizer = load_artifact(base_path, artifact_dir, device=device)
    tuned = score(tuned_model, tokenizer, examples)
    del tuned_model
    base = score(load_start(base_path, parent_artifact, device), tokenizer, examples)
    return report(base, tuned, threshold, source, min(len(examples), MAX_EXAMPLES))


def message(result: dict[str, Any]) -> str:
    """The job event's sentence."""
    base, tuned, delta = result["base"], result["tuned"], result["delta"]
    text = (
        f"Forgetting check on {result['general_set']} ({result['examples']} examples): "
        f"general loss {base['loss']:.4f} → {tuned['loss']:.4f} ({delta['loss']:+.4f}), "
        f"token accuracy {base['token_accuracy']:.3f} → {tuned['token_accuracy']:.3f}"
    )
    if result["exceeded"]:
        text += (
            f"; the loss rose by more than the threshold {result['threshold']}: the tuned "
            "model may have forgotten what the base knew"
        )
    return text
