"""Wire shapes of Lathe's dataset dry-run: `POST /v1/files/{file_id}/validate`.

Kept apart from schemas.py (OpenAI's objects): this endpoint is Lathe's own, and its report
is large enough to deserve a file. The report itself is built in core.training.dry_run.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.jobspec.job import AdapterSpec, DataOptions


class DryRunMethod(BaseModel):
    """`method` as in a job body; only `type` is read, so a job's whole block may be pasted."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(
        "supervised",
        description="supervised, dpo, reward_model, ppo, grpo, reinforcement or "
        "classification: decides the accepted formats and how rows tokenize.",
    )


class DryRunHyperparameters(BaseModel):
    """The hyperparameters that change what training sees; any others are ignored."""

    model_config = ConfigDict(extra="ignore")
    n_epochs: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    max_seq_length: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"


class ValidateFileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(
        description="Base model (or ft: model) whose tokenizer and chat template the job would use."
    )
    method: DryRunMethod = DryRunMethod()
    hyperparameters: DryRunHyperparameters = Field(
        default_factory=DryRunHyperparameters,
        description="Default: `method.<type>.hyperparameters` when given, else all 'auto'.",
    )
    data: DataOptions = Field(
        default_factory=DataOptions, description="Cleaning and split options, as on the job."
    )
    seed: int = Field(0, description="Seed of the hold-out split (a job uses its own seed).")
    adapter: AdapterSpec | None = Field(
        None, description="As on the job: its target_modules are checked against the model's."
    )

    @model_validator(mode="before")
    @classmethod
    def _hyperparameters_from_method(cls, value: Any) -> Any:
        """A pasted job `method` block carries the hyperparameters: use them if none given."""
        if isinstance(value, dict) and "hyperparameters" not in value:
            method = value.get("method")
            kind = method.get("type", "supervised") if isinstance(method, dict) else None
            if isinstance(kind, str):  # anything else is refused below, naming method.type
                block = method.get(kind)
                if isinstance(block, dict) and isinstance(block.get("hyperparameters"), dict):
                    value = {**value, "hyperparameters": block["hyperparameters"]}
        return value


class Issue(BaseModel):
    line: int = Field(
        description="1-based line (CSV: physical line; parquet: row + 1); 0 for the whole file."
    )
    field: str | None
    message: str
    code: str


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class TokenStats(BaseModel):
    """Per token sequence (one per example; two per preference pair), before truncation."""

    n_sequences: int
    total_tokens: int
    trained_tokens: int = Field(description="Tokens that carry loss.")
    prompt_tokens: int
    max_seq_length: int | None
    n_truncated: int = Field(description="Sequences longer than max_seq_length.")
    truncated_tokens: int = Field(description="Tokens those sequences lose.")
    n_skipped: int = Field(
        description="Sequences whose trained tokens all lie past "
        "max_seq_length: the trainer skips them."
    )
    min: int
    mean: float
    p50: float
    p95: float
    max: int
    histogram: Histogram


class ExactDuplicate(BaseModel):
    line: int
    duplicate_of: int


class NearDuplicate(BaseModel):
    line: int
    similar_to: int


class Duplicates(BaseModel):
    exact: int
    exact_pairs: list[ExactDuplicate]
    near: int = Field(description="Near-duplicate pairs that are not exact duplicates.")
    near_pairs: list[NearDuplicate]
    near_threshold: float = Field(description="Jaccard similarity of character 5-grams.")


class DataPlan(BaseModel):
    """What `data` options and the hold-out split would do (as if no validation_file)."""

    n_dropped: int
    n_train: int
    n_validation: int
    n_test: int = Field(0, description="Examples `data.test_split` keeps for the final evaluation.")
    notes: list[str] = Field(description="The job events these steps would produce.")


class Estimate(BaseModel):
    n_epochs: int
    max_seq_length: int
    tokens_per_epoch: int = Field(
        description="Tokens the trainer processes per epoch (training split, after truncation)."
    )
    trained_tokens: int = Field(
        description="tokens_per_epoch × n_epochs: the job's trained_tokens."
    )
    tokens_per_second: float = Field(description="The deployment's configured throughput.")
    seconds: float


class Segment(BaseModel):
    text: str
    trained: bool


class PreviewSequence(BaseModel):
    line: int
    sequence: Literal["example", "chosen", "rejected", "prompt", "text"]
    n_tokens: int
    n_trained: int = Field(description="Trained tokens within max_seq_length.")
    truncated: bool
    segments: list[Segment] = Field(
        description="The sequence as trained (truncated), in runs of trained and untrained tokens."
    )


class FileValidation(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    object: Literal["file.validation"] = "file.validation"
    file_id: str
    model: str
    method: str
    format: str | None
    shape: str | None = None
    """Lathe: the ecosystem shape the rows were converted from (hh_rlhf, ultrafeedback,
    llamafactory_sharegpt, pretokenized, axolotl_input_output, ...; else the format)."""
    container: str | None = None
    """Lathe: jsonl, json_array, csv or parquet."""
    ok: bool
    n_records: int
    n_examples: int
    errors: list[Issue]
    error_count: int
    warnings: list[Issue]
    warning_count: int
    tokens: TokenStats
    duplicates: Duplicates
    data: DataPlan
    estimate: Estimate
    preview: list[PreviewSequence]
