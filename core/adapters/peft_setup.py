"""One peft config builder per adapter type, looked up in a registry.

Adding an adapter type is adding a builder here (and the name in AdapterSpec.type). Elsewhere only
QLoRA's 4-bit loading and 8-bit optimizer, and merge eligibility (MERGEABLE), look at the type.
`full` has no config: every weight trains.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from peft import (
    IA3Config,
    LoraConfig,
    PeftConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
    PromptTuningInit,
    TaskType,
)
from torch import nn

from core.adapters.errors import AdapterUnsupported
from core.adapters.targets import CLASSIFIER_HEADS, resolve_ia3_modules, resolve_target_modules
from core.jobspec.job import AdapterSpec

Task = Literal["causal_lm", "seq_cls"]

TASK_TYPES: dict[str, TaskType] = {"causal_lm": TaskType.CAUSAL_LM, "seq_cls": TaskType.SEQ_CLS}

MERGEABLE = {"lora", "qlora", "ia3", "full"}
"""Types whose weights can be folded into the base; soft prompts live outside any weight."""

SOFT_PROMPTS = frozenset({"prompt_tuning", "prefix_tuning"})
"""Types that prepend learned virtual tokens to every row: one example per row, so training
cannot pack or concatenate examples (the prompt would precede only the first of them)."""


@dataclass(frozen=True)
class BuildContext:
    """What a builder may look at: the loaded base model, the task, where the base lives."""

    model: nn.Module
    task: Task
    base_path: Path

    @property
    def task_type(self) -> TaskType:
        return TASK_TYPES[self.task]

    def heads_to_save(self) -> list[str] | None:
        """A freshly initialised classifier head must train and ship with the adapter."""
        if self.task != "seq_cls":
            return None
        leaves = {name.rsplit(".", 1)[-1] for name, _ in self.model.named_modules()}
        return sorted(leaves & CLASSIFIER_HEADS) or None


Builder = Callable[[AdapterSpec, BuildContext], PeftConfig | None]


def _lora(spec: AdapterSpec, ctx: BuildContext) -> LoraConfig:
    return LoraConfig(
        task_type=ctx.task_type,
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=resolve_target_modules(ctx.model, spec.target_modules),
        modules_to_save=ctx.heads_to_save(),
    )


def _ia3(spec: AdapterSpec, ctx: BuildContext) -> IA3Config:
    targets, feedforward = resolve_ia3_modules(ctx.model, spec.target_modules)
    return IA3Config(
        task_type=ctx.task_type,
        target_modules=targets,
        feedforward_modules=feedforward,
        modules_to_save=ctx.heads_to_save(),
    )


def _prompt_tuning(spec: AdapterSpec, ctx: BuildContext) -> PromptTuningConfig:
    # TEXT init starts the soft prompt from real token embeddings, which trains faster and more
    # stably than random vectors; peft re-tokenizes the text with the base model's tokenizer.
    text = spec.prompt_tuning_init_text
    return PromptTuningConfig(
        task_type=ctx.task_type,
        num_virtual_tokens=spec.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=text,
        tokenizer_name_or_path=str(ctx.base_path) if text else None,
    )


def _accepts_past_key_values(module: nn.Module) -> bool:
    return "past_key_values" in inspect.signature(module.forward).parameters


def _prefix_tuning(spec: AdapterSpec, ctx: BuildContext) -> PrefixTuningConfig:
    # The prefix enters as `past_key_values`. For classification peft calls the model or its
    # backbone with it directly and fails only at the first forward; fail at load instead.
    # (transformers 5's Llama and BERT classifiers do not take it.)
    if ctx.task == "seq_cls":
        backbone = getattr(ctx.model, getattr(ctx.model, "base_model_prefix", ""), ctx.model)
        if not (_accepts_past_key_values(ctx.model) or _accepts_past_key_values(backbone)):
            raise AdapterUnsupported(
                f"prefix_tuning is not supported for sequence classification with "
                f"{type(ctx.model).__name__}: it takes no past_key_values; use prompt_tuning"
            )
    return PrefixTuningConfig(task_type=ctx.task_type, num_virtual_tokens=spec.num_virtual_tokens)


def _full(spec: AdapterSpec, ctx: BuildContext) -> None:
    return None


BUILDERS: dict[str, Builder] = {
    "lora": _lora,
    "qlora": _lora,  # the quantization is in how the base loads; the adapter is a plain LoRA
    "ia3": _ia3,
    "prompt_tuning": _prompt_tuning,
    "prefix_tuning": _prefix_tuning,
    "full": _full,
}


def build_peft_config(spec: AdapterSpec, ctx: BuildContext) -> PeftConfig | None:
    """The peft config for `spec` on `ctx.model`, or None for full fine-tuning."""
    return BUILDERS[spec.type](spec, ctx)
