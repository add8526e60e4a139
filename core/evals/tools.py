"""What a worker grades and samples with: models resolved as the run's organization may use
them (its own, bases, ones shared with it), called through the inference service."""

from __future__ import annotations

from typing import Any

from core import registry
from core.errors import NotFound
from core.evals.execute import Sampler
from core.graders.base import GraderTools
from core.graders.judge import InferenceJudge, ServiceCaller
from core.persistence.db import session_scope
from core.settings import Settings


def service_tools(settings: Settings, org_id: str) -> tuple[GraderTools, Sampler]:
    """(grader tools with a judge, a sampler): both through one ServiceCaller."""
    caller = ServiceCaller(settings)
    rows: dict[str, Any] = {}

    def resolve(model: str) -> Any:
        if model not in rows:
            with session_scope(settings.resolved_database_url) as session:
                rows[model] = registry.get_usable_model(session, org_id, model)
        return rows[model]

    def sample(_messages: list[dict[str, str]], body: dict[str, Any]) -> dict[str, Any]:
        relayed = caller(resolve(body["model"]), body)
        if not isinstance(relayed.json, dict):
            raise NotFound(f"the model {body['model']} gave no answer")
        return relayed.json

    judge = InferenceJudge(resolve, caller)
    return GraderTools(judge=judge, settings=settings, usage={}), sample
