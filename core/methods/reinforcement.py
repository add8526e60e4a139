"""OpenAI's reinforcement fine-tuning (`method.type: "reinforcement"`), run as GRPO.

The job's reinforcement block becomes the GRPO block it maps to (core.jobspec.rft), what
the mapping did and what it could not honour are job events, and core.methods.grpo trains.
"""

from __future__ import annotations

import dataclasses

from core.jobspec.job import Method
from core.jobspec.recipe import SpecError, TrainingContext, TrainingResult
from core.methods import grpo


def run(ctx: TrainingContext) -> TrainingResult:
    block = ctx.spec.method.reinforcement
    assert block is not None  # Method requires it for this type
    converted = block.to_grpo()
    for name, reason in block.ignored().items():
        value = getattr(block.hyperparameters, name)
        ctx.reporter.message(
            f"{name}={value!r}: {reason}; ignored",
            level="warn",
            data={"ignored_hyperparameter": name, "value": value},
        )
    ctx.reporter.message(
        "Reinforcement fine-tuning runs on GRPO: "
        f"{converted.hyperparameters.num_generations} completions per prompt "
        f"(compute_multiplier {block.hyperparameters.compute_multiplier})",
        data={"grpo": converted.model_dump(mode="json", exclude={"grader"})},
    )
    spec = ctx.spec.model_copy(update={"method": Method(type="grpo", grpo=converted)})
    try:
        return grpo.run(dataclasses.replace(ctx, spec=spec))
    except SpecError as exc:  # name the field the client wrote, not the GRPO block's
        if exc.param and exc.param.startswith("method.grpo"):
            exc.param = "method.reinforcement" + exc.param[len("method.grpo") :]
        raise
