"""Work-arounds for version mismatches between peft and transformers, each tested.

Kept apart so that each can be deleted when the pinned versions agree again.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def fix_soft_prompt_generation(model: nn.Module) -> None:
    """Make `generate()` of a prompt- or prefix-tuned peft model see its soft prompt once.

    peft 0.21 looks for the KV cache under `past_key_values`; transformers 5 calls it `cache`.
    So peft always believes it is at the first step: prompt tuning prepends the soft prompt
    again at every generated token, and prefix tuning's prefix (handed over as
    `past_key_values`) loses to the empty `cache` transformers passes, so generation ran the
    bare base model. Translate both ways: peft sees the cache under its name, the model gets
    the prefix under transformers'. (Training forwards are unaffected: no cache there.)
    """
    base_prepare = model.base_model_prepare_inputs_for_generation
    peft_prepare = model.prepare_inputs_for_generation

    def base_prepare_with_peft_names(*args: Any, **kwargs: Any) -> dict[str, Any]:
        inputs = base_prepare(*args, **kwargs)
        cache = inputs.get("cache")
        if cache is not None and cache.get_seq_length() > 0:
            inputs["past_key_values"] = cache  # the soft prompt is already in it
        return inputs

    def prepare(*args: Any, **kwargs: Any) -> dict[str, Any]:
        inputs = peft_prepare(*args, **kwargs)
        prefix = inputs.pop("past_key_values", None)
        if prefix is not None:
            inputs["cache"] = prefix  # the new prefix at the first step, else the same cache
        return inputs

    model.base_model_prepare_inputs_for_generation = base_prepare_with_peft_names
    model.prepare_inputs_for_generation = prepare
