"""Load the model a job trains: the base with a fresh adapter, or — for `model: "ft:..."` — the
base with the parent's adapter loaded trainable (or the parent's full weights).

The job's adapter spec is the parent's (the API copies it at creation), so
`load_for_training` builds the same adapter — QLoRA quantization and k-bit preparation
included — and the parent's weights are then loaded into it; every adapter tensor must match,
or the job fails saying so rather than train a half-initialised adapter.
"""

from __future__ import annotations

from typing import Any

from core.adapters import load_for_training, read_manifest
from core.jobspec.recipe import SpecError, TrainingContext


def load_model(ctx: TrainingContext, **kwargs: Any) -> tuple[Any, Any]:
    """(model, tokenizer) ready to train; kwargs go to `core.adapters.load_for_training`."""
    spec = ctx.spec.adapter
    parent = ctx.parent_artifact_dir
    if parent is None:
        return load_for_training(ctx.base_model_path, spec, device=ctx.device, **kwargs)
    manifest = read_manifest(parent)
    if manifest["format"] == "full":  # the parent directory is a whole model: start from it
        return load_for_training(parent, spec, device=ctx.device, **kwargs)

    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    model, tokenizer = load_for_training(ctx.base_model_path, spec, device=ctx.device, **kwargs)
    weights = load_file(str(parent / "adapter_model.safetensors"))
    expected = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(model).items()}
    stored = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != stored:
        differ = len(set(expected.items()) ^ set(stored.items()))
        raise SpecError(
            f"the parent model's {manifest['adapter_type']} adapter does not fit the adapter "
            f"this job builds ({differ} tensor names or shapes differ)",
            param="model",
        )
    set_peft_model_state_dict(model, weights)
    return model, tokenizer
