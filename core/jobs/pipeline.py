"""A chain of jobs in one request: `POST /v1/fine_tuning/pipelines`.

    {"stages": [
      {"name": "sft", "model": "tiny-llama", "training_file": "file-a", "method": {...}},
      {"name": "rm",  "model": "tiny-llama", "training_file": "file-b",
       "method": {"type": "reward_model"}},
      {"name": "ppo", "model": "$sft", "training_file": "file-c",
       "method": {"type": "ppo", "ppo": {"reward_model": "$rm"}}}]}

Each stage is a job body (JobCreate) plus a `name`; `$name` in `model` or in a ppo/grpo
`reward_model` means "the model that earlier stage produces". The stages become jobs in one
transaction, with the references turned into job ids, and core.jobs.dependencies runs them in
order: each starts when the stages it uses succeed, and a failed stage fails those after it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, LatheError
from core.jobs.dependencies import model_fields, set_model_field
from core.jobs.service import create_job
from core.jobspec.job import JobCreate
from core.persistence.models import Job


class PipelineStage(JobCreate):
    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Names the stage; later stages refer to its model as `$name`.",
    )


class PipelineCreate(BaseModel):
    """Body of `POST /v1/fine_tuning/pipelines`."""

    stages: list[PipelineStage] = Field(
        min_length=1,
        max_length=16,
        description="Jobs in order; a stage may use the model of "
        "an earlier one as its `model` or its `method.ppo/grpo.reward_model` (`$name`).",
    )


def create_pipeline(session: Session, org_id: str, body: PipelineCreate) -> list[Job]:
    """One job per stage, created in order; a stage's errors name it (`stages[i].<field>`)."""
    ids: dict[str, str] = {}
    jobs: list[Job] = []
    for i, stage in enumerate(body.stages):
        where = f"stages[{i}]"
        if stage.name in ids:
            raise InvalidRequest(f"stage name '{stage.name}' is used twice", param=f"{where}.name")
        data = stage.model_dump(mode="json", exclude={"name"}, exclude_unset=True)
        for param, value in model_fields(data).items():
            if value.startswith("$"):
                if value[1:] not in ids:
                    raise InvalidRequest(
                        f"{value} names no earlier stage (stages so far: "
                        f"{', '.join(ids) or 'none'})",
                        param=f"{where}.{param}",
                    )
                set_model_field(data, param, ids[value[1:]])
        try:
            job = create_job(session, org_id, JobCreate.model_validate(data), stage=stage.name)
        except LatheError as exc:
            exc.message = f"stage '{stage.name}': {exc.message}"
            exc.param = f"{where}.{exc.param}" if exc.param else where
            raise
        ids[stage.name] = job.id
        jobs.append(job)
    return jobs
