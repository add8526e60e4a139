"""Drift monitoring (core.drift): the organization's opt-in, and a model's drift report.

Registered before the models router: its `/v1/models/{model:path}` would take `/drift` too.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.background import BackgroundTask

from api.deps import OrgDep, SessionDep, SettingsDep, StorageDep
from api.schemas_drift import DriftReport, DriftSettings, DriftSettingsUpdate
from core import registry
from core.drift import samples
from core.drift.report import drift_report
from core.inference.client import Relayed
from core.persistence.models import Model, Organization
from core.settings import Settings

router = APIRouter(prefix="/v1", tags=["drift"])


def _settings(enabled: bool, settings: Settings) -> DriftSettings:
    return DriftSettings(
        enabled=enabled,
        retention_days=settings.drift.retention_days,
        samples_per_model=settings.drift.samples_per_model,
        prompt_chars=settings.drift.prompt_chars,
    )


@router.get("/organization/drift", name="getDriftSettings", response_model=DriftSettings)
def get_drift_settings(org: OrgDep, session: SessionDep, settings: SettingsDep) -> DriftSettings:
    return _settings(session.get(Organization, org.id).drift_monitoring, settings)


@router.post("/organization/drift", name="updateDriftSettings", response_model=DriftSettings)
def update_drift_settings(
    body: DriftSettingsUpdate, org: OrgDep, session: SessionDep, settings: SettingsDep
) -> DriftSettings:
    samples.set_enabled(session, org.id, body.enabled)
    session.commit()
    return _settings(body.enabled, settings)


@router.get("/models/{model:path}/drift", name="retrieveModelDrift", response_model=DriftReport)
def retrieve_model_drift(
    model: str, org: OrgDep, session: SessionDep, storage: StorageDep, settings: SettingsDep
) -> DriftReport:
    """Sync: it reads the training file and embeds prompts (in a worker thread)."""
    row = registry.get_model(session, org.id, model)
    return DriftReport.model_validate(drift_report(session, storage, settings, org.id, row))


def sampled(
    response: Response,
    settings: Settings,
    org_id: str,
    row: Model,
    prompts: list[str],
    answer: Relayed,
) -> Response:
    """The inference answer, with its drift sample recorded after it is sent (only for the
    organization's own fine-tuned models; samples.record checks the opt-in)."""
    if row.organization_id == org_id and row.job_id:
        response.background = BackgroundTask(
            samples.record_quietly, settings, org_id, row.id, prompts, answer.json
        )
    return response
