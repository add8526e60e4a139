"""Wire shapes of Lathe's evaluation reports (#17): forgetting, benchmarks, fairness."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GeneralScore(BaseModel):
    loss: float = Field(description="Mean next-token loss on the general set's trained tokens.")
    token_accuracy: float = Field(description="Share of those tokens predicted exactly.")
    tokens: int


class ForgettingDelta(BaseModel):
    loss: float = Field(description="tuned − base: positive means the tuned model is worse.")
    token_accuracy: float = Field(description="tuned − base: negative means it forgot.")


class ForgettingReport(BaseModel):
    """`evaluation.forgetting_check`'s result: the general set scored before and after."""

    general_set: str = Field(description="'builtin', or the evaluation.general_file id.")
    examples: int
    base: GeneralScore = Field(description="The starting model (the base or the ft: parent).")
    tuned: GeneralScore
    delta: ForgettingDelta
    threshold: float = Field(description="evaluation.forgetting_threshold.")
    exceeded: bool = Field(description="delta.loss > threshold: the job warned in an event.")


class BenchmarkTask(BaseModel):
    kind: str = Field(
        description="multiple_choice, exact_match or perplexity; `eval` for one of "
        "evaluation.evals (keyed by its eval id, metric pass_rate)."
    )
    examples: int
    run_id: str | None = Field(
        None, description="An eval's run on the final weights (GET /v1/evals/{id}/runs/{run})."
    )
    base: dict[str, float] | None = Field(
        None,
        description="lm-eval's metrics on the starting model (for an eval job: the model's "
        "base, or the base model evaluated): acc, acc_norm (multiple "
        "choice), exact_match, word_perplexity, byte_perplexity, bits_per_byte, with *_stderr.",
    )
    tuned: dict[str, float] | None = Field(
        None, description="The same on the tuned model (absent for an eval job on a base)."
    )


class CheckpointBenchmark(BaseModel):
    """One kept checkpoint's scores (evaluation.benchmark_checkpoints)."""

    step: int
    fine_tuned_model_checkpoint: str = Field(description="The checkpoint's model id.")
    tasks: dict[str, dict[str, float]] = Field(
        description="lm-eval's metrics by task file id; an eval's pass_rate by eval id."
    )
    eval_runs: dict[str, str] | None = Field(
        None, description="With evaluation.evals: each eval's run on this checkpoint."
    )


class SelectedWeights(BaseModel):
    """evaluation.select_best's choice: the weights the job's fine_tuned_model serves."""

    step: int | None = Field(description="The chosen checkpoint's step; null: the final model.")
    fine_tuned_model_checkpoint: str | None = Field(
        description="The checkpoint whose weights were published as fine_tuned_model."
    )
    task: str
    metric: str
    mode: str = Field(description="'max' or 'min'.")
    value: float = Field(description="The chosen weights' score.")


class BenchmarkReport(BaseModel):
    """`evaluation.benchmark_files`' result: each task file scored before and after."""

    harness: str | None = Field(
        description="The harness and its version, e.g. 'lm-eval 0.4.13' (null: evals only)."
    )
    tasks: dict[str, BenchmarkTask] = Field(
        description="By task file id; `tuned` is the final model (before any select_best)."
    )
    checkpoints: list[CheckpointBenchmark] | None = Field(
        None, description="With evaluation.benchmark_checkpoints: each kept checkpoint, by step."
    )
    selected: SelectedWeights | None = Field(None, description="With evaluation.select_best.")


class GroupMetrics(BaseModel):
    examples: int
    accuracy: float
    macro_f1: float
    tpr: float | None = Field(
        description="True positive rate (two classes: of the second label in order; more: "
        "the mean one-vs-rest rate); null without positives."
    )
    fpr: float | None = Field(description="False positive rate, the same way.")


class GroupReport(BaseModel):
    groups: dict[str, GroupMetrics]
    accuracy_gap: float | None = Field(description="max − min accuracy across groups.")
    equal_opportunity_gap: float | None = Field(description="max − min TPR across groups.")
    equalized_odds_gap: float | None = Field(description="The larger of the TPR and FPR gaps.")


class FairnessReport(BaseModel):
    """Classification rows with a `group`: per-group metrics of the base and tuned model."""

    split: str = Field(description="'test' (data.test_split) if there is one, else 'validation'.")
    base: GroupReport
    tuned: GroupReport
