"""Which modules of a base model an adapter attaches to.

Clients write `"target_modules": "auto"` and expect the usual choice for their model: the
attention and MLP projections. Names differ per architecture, so we keep a small table for the
families we serve and, for anything else, fall back to every linear layer except the output
head (adapting the head of a causal LM mostly re-learns the vocabulary and bloats the adapter).
"""

from __future__ import annotations

from typing import Literal

from torch import nn

_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_BERT_LIKE = ["query", "key", "value", "dense"]

LORA_TARGETS: dict[str, list[str]] = {
    **dict.fromkeys(
        ["llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"],
        _LLAMA_LIKE,
    ),
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    **dict.fromkeys(["bert", "roberta", "xlm-roberta", "electra"], _BERT_LIKE),
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
}
"""LoRA/QLoRA 'auto' targets: attention + MLP projections (QLoRA paper: all of them, not q/v)."""

IA3_TARGETS: dict[str, tuple[list[str], list[str]]] = {
    **dict.fromkeys(
        ["llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"],
        (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    ),
    "gpt2": (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
    **dict.fromkeys(
        ["bert", "roberta", "xlm-roberta", "electra"],
        (["key", "value", "output.dense"], ["output.dense"]),
    ),
}
"""IA3 '(target, feedforward)' modules, as in the IA3 paper: rescale keys, values and the FFN
input. Feedforward modules must be a subset of the targets (peft checks this)."""

CLASSIFIER_HEADS = {"classifier", "score"}
"""Sequence-classification heads (peft's names too): freshly initialised, so fully trained."""

HEAD_NAMES = {"lm_head", "embed_out"} | CLASSIFIER_HEADS
"""Output heads: never LoRA targets and never quantized."""


def _is_linear(module: nn.Module) -> bool:
    # GPT-2 uses transformers' Conv1D (a transposed Linear); bnb's Linear4bit subclasses Linear.
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def linear_module_names(model: nn.Module) -> dict[str, str]:
    """Full dotted name -> leaf name of every linear layer outside the output head."""
    out_emb = getattr(model, "get_output_embeddings", lambda: None)()
    return {
        name: name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if _is_linear(module)
        and module is not out_emb
        and name.rsplit(".", 1)[-1] not in HEAD_NAMES
    }


def _matches(full_name: str, target: str) -> bool:
    """peft's rule for a plain name: the full name equals it or ends with '.' + it."""
    return full_name == target or full_name.endswith("." + target)


def _present(model: nn.Module, names: list[str]) -> list[str]:
    all_names = [n for n, _ in model.named_modules()]
    return [t for t in names if any(_matches(n, t) for n in all_names)]


def model_type(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", "") or ""


def resolve_target_modules(
    model: nn.Module, target_modules: list[str] | Literal["auto", "all-linear"]
) -> list[str] | Literal["all-linear"]:
    """Turn the spec's `target_modules` into names peft accepts, failing early on typos.

    A misspelt name would otherwise surface deep inside peft (or, worse, match nothing in a
    regex); a ValueError naming the bad entry lets the API return a 400 on the field.
    """
    if target_modules == "all-linear":
        return "all-linear"
    if target_modules == "auto":
        known = _present(model, LORA_TARGETS.get(model_type(model), []))
        if known:
            return known
        leaves = sorted(set(linear_module_names(model).values()))
        if not leaves:
            raise ValueError(f"model type {model_type(model)!r} has no linear layers to adapt")
        return leaves
    if not target_modules:
        raise ValueError("target_modules is empty")
    missing = [t for t in target_modules if t not in _present(model, list(target_modules))]
    if missing:
        available = sorted(set(linear_module_names(model).values()))
        raise ValueError(
            f"target_modules {missing} not found in {model_type(model) or 'the model'}; "
            f"linear layers available: {available}"
        )
    return list(target_modules)


def resolve_ia3_modules(
    model: nn.Module, target_modules: list[str] | Literal["auto", "all-linear"]
) -> tuple[list[str] | Literal["all-linear"], list[str]]:
    """IA3 targets plus the feedforward subset (scaled on the input rather than the output)."""
    targets, feedforward = IA3_TARGETS.get(model_type(model), ([], []))
    if target_modules == "auto" and _present(model, targets) == targets:
        return targets, feedforward
    resolved = resolve_target_modules(model, target_modules)
    if resolved == "all-linear":
        return resolved, []
    return resolved, [f for f in feedforward if f in resolved]
