"""`/v1/fine_tuning/alpha/graders`: try a grader on one sample, or check it, as OpenAI's.

    POST /v1/fine_tuning/alpha/graders/run {"grader": {...}, "model_sample": "Paris",
                                            "item": {"reference_answer": "Paris"}}
    → {"reward": 1.0, "metadata": {...}, "sub_rewards": {...}, ...}
    POST /v1/fine_tuning/alpha/graders/validate {"grader": {...}} → {"grader": {...}}

Graders are core.graders' (the ones RFT/GRPO jobs score with). A score_model/label_model
judge is called through the inference service as the organization may use it (a 404 naming
`grader...model` otherwise); a `python` grader is a 400 naming its `type` unless the operator
enabled the sandbox. Sync routes: grading blocks (judge calls run on the app's loop).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import EngineDep, OrgDep, SessionDep, SettingsDep
from core import registry
from core.errors import InvalidRequest
from core.graders.base import GraderTools
from core.graders.check import parse_or_invalid
from core.graders.grade import bind, judge_models
from core.graders.judge import InferenceJudge
from core.graders.run import run_grader
from core.jobspec.bounds import check_json_depth

router = APIRouter(prefix="/v1/fine_tuning/alpha/graders", tags=["graders"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: dict[str, Any] = Field(
        description="An OpenAI grader: string_check, text_similarity, score_model, "
        "label_model, python (where the operator enabled its sandbox) or multi (plus Lathe's "
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
    ignored: list[str] = Field(
        default_factory=list,
        description="Lathe: grader fields given a value open models cannot honour (e.g. "
        "sampling_params.reasoning_effort), accepted and ignored.",
    )


class GraderRunResponse(BaseModel):
    reward: float
    metadata: GraderRunMetadata
    sub_rewards: dict[str, Any]
    model_grader_token_usage_per_model: dict[str, Any]


class GraderValidateResponse(BaseModel):
    grader: dict[str, Any]


def _checked(body: _Body, org: Any, session: Any, settings: Any):
    """The parsed grader, with every judge model checked to be one the organization may use."""
    grader = parse_or_invalid(body.grader, "grader", settings)
    for model, path in judge_models(grader):
        registry.get_usable_model(session, org.id, model, param=f"grader{path}")
    return grader


@router.post("/run", name="runGrader", response_model=GraderRunResponse)
def run(
    body: GraderRunRequest,
    org: OrgDep,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    import anyio.from_thread

    grader = _checked(body, org, session, settings)
    if body.item is not None and not isinstance(body.item, dict):
        raise InvalidRequest("item must be a JSON object (the dataset row)", param="item")

    def call(row: Any, wire: dict[str, Any]) -> Any:  # on the app's loop, from this thread
        return anyio.from_thread.run(engine.call, "chat/completions", row, wire)

    judge = InferenceJudge(lambda m: registry.get_usable_model(session, org.id, m), call)
    tools = GraderTools(judge=judge, settings=settings, usage={})
    return run_grader(bind(grader, tools), body.model_sample, body.item or {}, tools)


@router.post("/validate", name="validateGrader", response_model=GraderValidateResponse)
def validate(
    body: GraderValidateRequest, org: OrgDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    grader = _checked(body, org, session, settings)
    return {"grader": grader.model_dump(mode="json", by_alias=True, exclude_none=True)}
