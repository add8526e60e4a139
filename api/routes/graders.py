"""`/v1/fine_tuning/alpha/graders`: try a grader on one sample, or check it, as OpenAI's.

    POST /v1/fine_tuning/alpha/graders/run {"grader": {...}, "model_sample": "Paris",
                                            "item": {"reference_answer": "Paris"}}
    → {"reward": 1.0, "metadata": {...}, "sub_rewards": {...}, ...}
    POST /v1/fine_tuning/alpha/graders/validate {"grader": {...}} → {"grader": {...}}

Graders are core.graders' (the ones RFT/GRPO jobs score with); a grader type Lathe does not
run (`python`, `score_model`, `label_model`) is a 400 naming its `type`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import OrgDep
from core.errors import InvalidRequest
from core.graders.check import parse_or_invalid
from core.graders.run import run_grader
from core.jobs.maxima import check_json_depth

router = APIRouter(prefix="/v1/fine_tuning/alpha/graders", tags=["graders"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: dict[str, Any] = Field(
        description="An OpenAI grader: string_check, text_similarity or multi (plus Lathe's "
        "regex and json_schema)."
    )

    @field_validator("grader", "item", mode="before", check_fields=False)
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return check_json_depth(value)


class GraderRunRequest(_Body):
    model_sample: str = Field(description="The sample to grade: {{sample.output_text}}.")
    item: Any = Field(None, description="The dataset row: {{item.<key>}}.")


class GraderValidateRequest(_Body):
    pass


class GraderRunMetadata(BaseModel):
    name: str
    type: str
    errors: dict[str, Any]
    execution_time: float
    scores: dict[str, Any]
    token_usage: int | None = None
    sampled_model_name: str | None = None


class GraderRunResponse(BaseModel):
    reward: float
    metadata: GraderRunMetadata
    sub_rewards: dict[str, Any]
    model_grader_token_usage_per_model: dict[str, Any]


class GraderValidateResponse(BaseModel):
    grader: dict[str, Any]


@router.post("/run", name="runGrader", response_model=GraderRunResponse)
def run(body: GraderRunRequest, org: OrgDep) -> dict[str, Any]:
    grader = parse_or_invalid(body.grader, "grader")
    if body.item is not None and not isinstance(body.item, dict):
        raise InvalidRequest("item must be a JSON object (the dataset row)", param="item")
    return run_grader(grader, body.model_sample, body.item or {})


@router.post("/validate", name="validateGrader", response_model=GraderValidateResponse)
def validate(body: GraderValidateRequest, org: OrgDep) -> dict[str, Any]:
    grader = parse_or_invalid(body.grader, "grader")
    return {"grader": grader.model_dump(mode="json", by_alias=True)}
