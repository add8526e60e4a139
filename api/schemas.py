"""Wire schemas in OpenAI's shapes, kept apart from the ORM tables they are built from."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.schemas_evals import BenchmarkReport, FairnessReport, ForgettingReport
from core.jobs.dependencies import waiting_for
from core.jobs.progress import estimated_finish
from core.persistence import models as orm

T = TypeVar("T")


def ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


class ListResponse(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None

    @classmethod
    def of(cls, items: list[Any], has_more: bool = False) -> ListResponse[T]:
        ids = [getattr(i, "id", None) for i in items]
        return cls(
            data=items,
            has_more=has_more,
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
        )


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    status_details: str | None = None
    expires_at: int | None = None
    sha256: str | None = Field(None, description="Lathe: SHA-256 of the stored bytes.")
    format: str | None = Field(None, description="Lathe: detected dataset format.")
    n_examples: int | None = Field(None, description="Lathe: examples found.")

    @classmethod
    def from_row(cls, row: orm.File) -> FileObject:
        return cls(
            id=row.id,
            bytes=row.bytes,
            created_at=ts(row.created_at) or 0,
            filename=row.filename,
            purpose=row.purpose,
            status=row.status,
            status_details=row.status_details,
            sha256=row.sha256,
            format=row.format,
            n_examples=row.n_examples,
        )


class DeletedObject(BaseModel):
    id: str
    object: str
    deleted: bool = True


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class FineTuningJob(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    finished_at: int | None = None
    model: str
    fine_tuned_model: str | None = None
    organization_id: str
    status: Literal[
        "validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"
    ]
    training_file: str
    validation_file: str | None = None
    result_files: list[str] = []
    hyperparameters: dict[str, Any]
    trained_tokens: int | None = None
    error: JobError | None = None
    seed: int
    estimated_finish: int | None = None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    method: dict[str, Any]
    user_provided_suffix: str | None = None
    adapter: dict[str, Any] = Field(description="Lathe: how the base weights are adapted.")
    data: dict[str, Any] = Field(
        default_factory=dict, description="Lathe: cleaning and hold-out split of the data."
    )
    depends_on: list[str] | None = Field(
        None,
        description="Lathe: jobs whose models this job uses; it waits in "
        "validating_files until they succeed, and fails if one fails.",
    )
    stage: str | None = Field(None, description="Lathe: its stage name, if made by a pipeline.")
    waiting_for: list[str] | None = Field(
        None,
        description="Lathe: while the job waits for other jobs' models, those not yet "
        "succeeded (its status stays validating_files); while a queued job waits for a "
        "worker of its size (resources.gpus above 1), that worker; null otherwise.",
    )
    resources: dict[str, Any] = Field(
        default_factory=dict, description="Lathe: the devices the job trains on."
    )
    distributed: dict[str, Any] = Field(
        default_factory=dict, description="Lathe: how it splits its work across them."
    )
    evaluation: dict[str, Any] | None = Field(
        None,
        description="Lathe: validation metrics of the untuned base and of the fine-tuned "
        "model, {base: {...}, tuned: {...}}, once the job has succeeded with validation data; "
        "with data.test_split also {test: {base: {...}, tuned: {...}, examples: n}}.",
    )
    forgetting: ForgettingReport | None = Field(
        None,
        description="Lathe: the forgetting check (evaluation.forgetting_check), once the job "
        "has succeeded: a general set's loss and token accuracy on the starting and the tuned "
        "model, and the change.",
    )
    benchmarks: BenchmarkReport | None = Field(
        None,
        description="Lathe: lm-eval on evaluation.benchmark_files, for the starting and the "
        "tuned model, once the job has succeeded.",
    )
    fairness: FairnessReport | None = Field(
        None,
        description="Lathe: for classification rows with a `group`, per-group accuracy, F1, "
        "TPR/FPR and the equal-opportunity / equalized-odds gaps, base and tuned.",
    )

    @classmethod
    def from_row(cls, job: orm.Job, session: Session | None = None) -> FineTuningJob:
        """With a session, `estimated_finish` is measured (core.jobs.progress); a job just
        created or changed by the request is not running, so its estimate is null anyway."""
        method = job.spec.get("method", {"type": "supervised"})
        requested = method.get(method["type"], {}).get("hyperparameters", {})
        return cls(
            id=job.id,
            created_at=ts(job.created_at) or 0,
            finished_at=ts(job.finished_at),
            model=job.model,
            fine_tuned_model=job.fine_tuned_model,
            organization_id=job.organization_id,
            status=job.status,
            training_file=job.training_file,
            validation_file=job.validation_file,
            result_files=job.result_files or [],
            hyperparameters=job.hyperparameters or requested,
            trained_tokens=job.trained_tokens,
            error=job.error,
            seed=job.seed,
            estimated_finish=ts(estimated_finish(session, job)) if session else None,
            integrations=job.spec.get("integrations"),
            metadata=job.metadata_,
            method=method,
            user_provided_suffix=job.suffix,
            adapter=job.spec.get("adapter", {}),
            data=job.spec.get("data", {}),
            depends_on=job.depends_on,
            stage=job.stage,
            waiting_for=waiting_for(session, job),
            resources=job.spec.get("resources", {}),
            distributed=job.spec.get("distributed", {}),
            evaluation=job.evaluation,
            forgetting=(job.evaluation or {}).get("forgetting"),
            benchmarks=(job.evaluation or {}).get("benchmarks"),
            fairness=(job.evaluation or {}).get("fairness"),
        )


class JobEventObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: str
    message: str
    type: str
    data: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: orm.JobEvent) -> JobEventObject:
        return cls(
            id=row.id,
            created_at=ts(row.created_at) or 0,
            level=row.level,
            message=row.message,
            type=row.type,
            data=row.data,
        )


class CheckpointObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: dict[str, Any]
    step_number: int

    @classmethod
    def from_row(cls, row: orm.Checkpoint) -> CheckpointObject:
        return cls(
            id=row.id,
            created_at=ts(row.created_at) or 0,
            fine_tuned_model_checkpoint=row.fine_tuned_model_checkpoint,
            fine_tuning_job_id=row.job_id,
            metrics=row.metrics,
            step_number=row.step,
        )


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    base_model: str | None = Field(None, description="Lathe: the base a fine-tune was made from.")
    adapter_type: str | None = Field(None, description="Lathe: lora, qlora, full, ...")
    task: str | None = Field(
        None, description="Lathe: causal_lm (chat/completions) or reward_model (/v1/rewards)."
    )

    @classmethod
    def from_row(cls, row: orm.Model) -> ModelObject:
        return cls(
            id=row.id,
            created=ts(row.created_at) or 0,
            owned_by=row.organization_id or "lathe",
            base_model=row.base_model if row.kind != "base" else None,
            adapter_type=row.adapter_type,
            task=row.task or "causal_lm",
        )
