"""Wire schemas of drift monitoring: the organization's opt-in and a model's drift report
(core.drift.report builds it; these types are its contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DriftSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # `enabled: 0` is not a boolean
    enabled: bool = Field(
        description="true: sample this organization's chat and text completions to its "
        "fine-tuned models; false: stop and delete the samples kept."
    )


class DriftSettings(BaseModel):
    object: Literal["organization.drift"] = "organization.drift"
    enabled: bool
    retention_days: float
    samples_per_model: int
    prompt_chars: int = Field(description="Characters of each prompt kept.")


class Distribution(BaseModel):
    mean: float
    p50: float
    p90: float
    max: float


class Compared(BaseModel):
    traffic: Distribution | None
    training: Distribution | None


class KsTest(BaseModel):
    statistic: float
    p_value: float


class Lengths(BaseModel):
    prompt_chars: Compared
    prompt_words: Compared
    completion_chars: Compared = Field(description="Streamed answers are not counted.")
    prompt_chars_ks: KsTest | None


class Tokens(BaseModel):
    prompt_tokens: Distribution | None = Field(description="From the answers' usage.")
    completion_tokens: Distribution | None
    js_distance: float = Field(
        description="Jensen-Shannon distance (base 2) between traffic and training word "
        "frequencies: 0 same, 1 disjoint."
    )
    unseen_word_rate: float = Field(description="Share of traffic words absent from training.")


class EmbeddingDrift(BaseModel):
    score: float = Field(description="Largest two-sample KS statistic over the components.")
    p_value: float = Field(description="Smallest KS p-value times the components (Bonferroni).")
    drifted: bool = Field(description="p_value < 0.05.")
    method: Literal["ks_2samp_pca_bonferroni"]
    components: int
    encoder: str


class Window(BaseModel):
    samples: int
    start: str | None
    end: str | None
    retention_days: float


class Reference(BaseModel):
    training_file: str
    rows: int = Field(description="Training rows sampled as the reference.")
    rows_in_file: int


class DriftReport(BaseModel):
    object: Literal["model.drift"] = "model.drift"
    model: str
    status: Literal["ok", "not_enabled", "no_reference", "insufficient_samples"]
    message: str | None = None
    window: Window | None = None
    reference: Reference | None = None
    lengths: Lengths | None = None
    tokens: Tokens | None = None
    embedding: EmbeddingDrift | None = Field(
        None, description="None when no encoder is configured (LATHE_DRIFT_EMBEDDING_MODEL)."
    )
