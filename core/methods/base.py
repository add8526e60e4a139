"""The last step every training method shares (`finish`); the interface itself — what a
method receives and returns — is core.jobspec.recipe."""

from __future__ import annotations

from typing import Any

from core.jobspec.recipe import TrainingContext, TrainingResult


def finish(
    ctx: TrainingContext,
    model: Any,
    tokenizer: Any,
    *,
    hyperparameters: dict[str, Any],
    history: list[dict[str, Any]],
    trained_tokens: float,
    stopped_early: bool,
    final: dict[str, Any] | None = None,
    model_task: str = "causal_lm",
    evaluation: dict[str, Any] | None = None,
) -> TrainingResult:
    """The last step of every recipe: save the artifact and describe what was trained."""
    from core.adapters import save_artifact

    manifest = save_artifact(model, tokenizer, ctx.spec.adapter, ctx.output_dir)
    return TrainingResult(
        artifact_dir=ctx.output_dir,
        adapter_type=ctx.spec.adapter.type,
        trained_tokens=round(trained_tokens),
        hyperparameters=hyperparameters,
        history=history,
        final_metrics={**(final or {}), **manifest},
        model_task=model_task,
        stopped_early=stopped_early,
        evaluation=evaluation,
    )
