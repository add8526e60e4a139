"""Wire shapes of OpenAI's Evals API objects (core.evals.wire builds them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class EvalObject(BaseModel):
    object: Literal["eval"]
    id: str
    name: str
    created_at: int
    metadata: dict[str, str]
    data_source_config: dict[str, Any] = Field(
        description="{type: custom, schema}: the item (and sample) namespaces' JSON schema."
    )
    testing_criteria: list[dict[str, Any]]


class EvalDeleted(BaseModel):
    object: Literal["eval.deleted"]
    deleted: bool
    eval_id: str


class ResultCounts(BaseModel):
    total: int
    passed: int
    failed: int
    errored: int


class CriterionResult(BaseModel):
    testing_criteria: str
    passed: int
    failed: int


class ModelUsage(BaseModel):
    model_name: str
    invocation_count: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int


class RunError(BaseModel):
    code: str | None
    message: str | None


class EvalRunObject(BaseModel):
    object: Literal["eval.run"]
    id: str
    eval_id: str
    name: str
    model: str
    status: Literal["queued", "in_progress", "completed", "failed", "canceled"]
    created_at: int
    metadata: dict[str, str]
    data_source: dict[str, Any]
    error: RunError
    result_counts: ResultCounts
    per_testing_criteria_results: list[CriterionResult]
    per_model_usage: list[ModelUsage]
    report_url: str = Field(description="The run on the dashboard (/ui/evals/{eval_id}).")


class EvalRunDeleted(BaseModel):
    object: Literal["eval.run.deleted"]
    deleted: bool
    run_id: str


class OutputItemObject(BaseModel):
    object: Literal["eval.run.output_item"]
    id: str
    run_id: str
    eval_id: str
    created_at: int
    status: Literal["pass", "fail", "error"]
    datasource_item_id: int
    datasource_item: dict[str, Any]
    results: list[dict[str, Any]] = Field(
        description="Each criterion's {name, type, score, passed, pass_threshold, errors?}."
    )
    sample: dict[str, Any] | None
