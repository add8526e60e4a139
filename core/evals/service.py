"""The Evals API's side of the database: evals and runs created, read, changed, cancelled and
deleted, every query filtered by the organization (another's ids are a plain 404).

A run is only recorded and queued here; a worker executes it (core.evals.execute)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import registry
from core.errors import InvalidRequest, NotFound, TooManyRequests
from core.evals import sources
from core.evals.criteria import criteria_item_keys, parse_criteria
from core.evals.spec import (
    CompletionsDataSource,
    CustomDataSourceConfig,
    DataSource,
    EvalCreate,
    EvalUpdate,
    FileContentSource,
    RunCreate,
)
from core.files import get_file
from core.graders.grade import judge_models
from core.graders.schema import check_shape
from core.ids import new_id
from core.persistence.eval_models import Eval, EvalOutputItem, EvalRun
from core.persistence.models import utcnow
from core.persistence.pagination import page
from core.settings import Settings
from core.storage import Storage

ACTIVE = ("queued", "in_progress")
FINISHED = ("completed", "failed", "canceled")
_DATA_SOURCE: TypeAdapter[Any] = TypeAdapter(DataSource)
UNSUPPORTED_CONFIGS = {
    "logs": "Lathe keeps no logs of completions to evaluate",
    "stored_completions": "Lathe stores no chat completions to evaluate",
}


def _parse(adapter: Any, value: Any, param: str) -> Any:
    """Validate into a model; a 400 naming `param` and the field within it."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("completions", "jsonl")]
        loc = [p for p in loc if p not in ("file_content", "file_id", "template", "item_reference")]
        where = param + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc)
        raise InvalidRequest(f"{first.get('msg')}", param=where) from None


def _config(value: dict[str, Any]) -> CustomDataSourceConfig:
    kind = value.get("type")
    if kind in UNSUPPORTED_CONFIGS:
        raise InvalidRequest(
            f"data_source_config type {kind!r}: {UNSUPPORTED_CONFIGS[kind]}; use 'custom'",
            param="data_source_config.type",
        )
    config = _parse(TypeAdapter(CustomDataSourceConfig), value, "data_source_config")
    try:
        check_shape(config.item_schema)
        from core.graders.schema import safe_validator

        safe_validator(config.item_schema)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="data_source_config.item_schema") from None
    return config


def _check_judges(session: Session, org_id: str, criteria: list, param: str) -> None:
    for i, criterion in enumerate(criteria):
        for model, path in judge_models(criterion.grader):
            registry.get_usable_model(session, org_id, model, param=f"{param}[{i}]{path}")


def create_eval(session: Session, settings: Settings, org_id: str, body: EvalCreate) -> Eval:
    config = _config(body.data_source_config)
    criteria = parse_criteria(body.testing_criteria, settings)
    sources.check_schema_keys(config.item_schema, criteria_item_keys(criteria))
    _check_judges(session, org_id, criteria, "testing_criteria")
    row = Eval(
        id=new_id("eval_", 32),
        organization_id=org_id,
        name=body.name or "",
        metadata_=body.metadata,
        data_source_config=config.model_dump(),
        testing_criteria=body.testing_criteria,
    )
    session.add(row)
    session.flush()
    return row


def get_eval(session: Session, org_id: str, eval_id: str, param: str = "eval_id") -> Eval:
    row = session.get(Eval, eval_id)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"No such eval: {eval_id}", param=param, code="eval_not_found")
    return row


def list_evals(
    session: Session, org_id: str, after: str | None, limit: int, order: str, order_by: str
) -> tuple[list[Eval], bool]:
    query = select(Eval).where(Eval.organization_id == org_id)
    cursor = get_eval(session, org_id, after, param="after") if after else None
    if order_by == "updated_at":
        column = Eval.updated_at
        desc = order == "desc"
        if cursor is not None:
            here = (cursor.updated_at, cursor.id)
            query = query.where(
                func.row(Eval.updated_at, Eval.id) < func.row(*here)
                if desc
                else func.row(Eval.updated_at, Eval.id) > func.row(*here)
            )
        ordering = (column.desc(), Eval.id.desc()) if desc else (column, Eval.id)
        rows = list(session.scalars(query.order_by(*ordering).limit(limit + 1)))
        return rows[:limit], len(rows) > limit
    return page(session, query, Eval, cursor, limit, desc=order == "desc")


def update_eval(session: Session, org_id: str, eval_id: str, body: EvalUpdate) -> Eval:
    row = get_eval(session, org_id, eval_id)
    if "name" in body.model_fields_set and body.name is not None:
        row.name = body.name
    if "metadata" in body.model_fields_set:
        row.metadata_ = body.metadata
    row.updated_at = utcnow()
    session.flush()
    return row


def delete_eval(session: Session, org_id: str, eval_id: str) -> None:
    """Its runs and output items go with it; a worker running one stops at its next row."""
    row = get_eval(session, org_id, eval_id)
    session.delete(row)
    session.flush()


def _source_rows(
    session: Session, storage: Storage, settings: Settings, org_id: str, data_source: Any
) -> list[dict[str, Any]]:
    source = data_source.source
    if isinstance(source, FileContentSource):
        if len(source.content) > settings.evals.max_items:
            raise InvalidRequest(
                f"at most {settings.evals.max_items} rows (LATHE_EVAL_MAX_ITEMS)",
                param="data_source.source.content",
            )
        return sources.content_rows(source)
    param = "data_source.source.id"
    row = get_file(session, org_id, source.id, param=param)
    if row.bytes > settings.evals.max_source_bytes:
        raise InvalidRequest(
            f"{source.id} is {row.bytes} bytes; an eval source is at most "
            f"{settings.evals.max_source_bytes} (LATHE_EVAL_MAX_SOURCE_BYTES)",
            param=param,
        )
    data = b"".join(storage.iter_bytes(row.storage_key))
    return sources.parse_jsonl(data, param, settings.evals.max_items)


def check_run(
    session: Session, storage: Storage, settings: Settings, org_id: str, ev: Eval, body: RunCreate
) -> tuple[Any, int]:
    """(the parsed data source, its row count), every row checked; 400s naming the field."""
    kind = body.data_source.get("type")
    if kind == "responses":
        raise InvalidRequest(
            "Lathe has no Responses API to evaluate: use a completions or jsonl data source",
            param="data_source.type",
        )
    data_source = _parse(_DATA_SOURCE, body.data_source, "data_source")
    criteria = parse_criteria(ev.testing_criteria, settings)
    config = CustomDataSourceConfig.model_validate(ev.data_source_config)
    completions = data_source if isinstance(data_source, CompletionsDataSource) else None
    if completions is not None:
        if completions.input_messages is None:
            raise InvalidRequest(
                "a completions data source needs input_messages (a template or an item_reference)",
                param="data_source.input_messages",
            )
        registry.get_usable_model(session, org_id, completions.model, param="data_source.model")
        sources.check_schema_keys(config.item_schema, sources.template_keys(completions))
    rows = _source_rows(session, storage, settings, org_id, data_source)
    check = sources.row_checker(config.item_schema, criteria, completions)
    param = (
        "data_source.source.content"
        if isinstance(data_source.source, FileContentSource)
        else "data_source.source.id"
    )
    for i, row in enumerate(rows):
        check(i, row, param)
    return data_source, len(rows)


def create_run(
    session: Session,
    storage: Storage,
    settings: Settings,
    org_id: str,
    eval_id: str,
    body: RunCreate,
) -> EvalRun:
    ev = get_eval(session, org_id, eval_id)
    data_source, total = check_run(session, storage, settings, org_id, ev, body)
    active = session.scalar(
        select(func.count(EvalRun.id)).where(
            EvalRun.organization_id == org_id, EvalRun.status.in_(ACTIVE)
        )
    )
    if active >= settings.evals.max_active_runs_per_org:
        raise TooManyRequests(
            f"{active} eval runs are queued or running (LATHE_MAX_ACTIVE_EVAL_RUNS_PER_ORG): "
            "wait for one to finish",
            retry_after=30,
        )
    run = EvalRun(
        id=new_id("evalrun_", 32),
        eval_id=ev.id,
        organization_id=org_id,
        name=body.name or f"run-{utcnow():%Y%m%d-%H%M%S}",
        model=getattr(data_source, "model", None),
        metadata_=body.metadata,
        data_source=data_source.model_dump(mode="json", exclude_none=True),
        status="queued",
        total_items=total,
        result_counts={"total": 0, "passed": 0, "failed": 0, "errored": 0},
        per_testing_criteria_results={
            c.name: {"passed": 0, "failed": 0}
            for c in parse_criteria(ev.testing_criteria, settings)
        },
        per_model_usage={},
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, org_id: str, eval_id: str, run_id: str) -> EvalRun:
    row = session.get(EvalRun, run_id)
    if row is None or row.organization_id != org_id or row.eval_id != eval_id:
        raise NotFound(f"No such run: {run_id}", param="run_id", code="run_not_found")
    return row


def list_runs(
    session: Session,
    org_id: str,
    eval_id: str,
    after: str | None,
    limit: int,
    order: str,
    status: str | None,
) -> tuple[list[EvalRun], bool]:
    get_eval(session, org_id, eval_id)
    query = select(EvalRun).where(EvalRun.eval_id == eval_id, EvalRun.organization_id == org_id)
    if status:
        query = query.where(EvalRun.status == status)
    cursor = get_run(session, org_id, eval_id, after) if after else None
    return page(session, query, EvalRun, cursor, limit, desc=order == "desc")


def cancel_run(session: Session, org_id: str, eval_id: str, run_id: str) -> EvalRun:
    """A queued run never starts; a running one stops before its next row (the rows it
    graded stay). Cancelling a finished run changes nothing."""
    row = get_run(session, org_id, eval_id, run_id)
    if row.status in ACTIVE:
        row.status = "canceled"
        row.finished_at = utcnow()
        session.flush()
    return row


def delete_run(session: Session, org_id: str, eval_id: str, run_id: str) -> None:
    session.delete(get_run(session, org_id, eval_id, run_id))
    session.flush()


def list_items(
    session: Session,
    org_id: str,
    eval_id: str,
    run_id: str,
    after: str | None,
    limit: int,
    order: str,
    status: str | None,
) -> tuple[list[EvalOutputItem], bool]:
    get_run(session, org_id, eval_id, run_id)
    query = select(EvalOutputItem).where(EvalOutputItem.run_id == run_id)
    if status:
        query = query.where(EvalOutputItem.status == status)
    cursor = get_item(session, org_id, eval_id, run_id, after) if after else None
    return page(session, query, EvalOutputItem, cursor, limit, desc=order == "desc")


def get_item(
    session: Session, org_id: str, eval_id: str, run_id: str, item_id: str
) -> EvalOutputItem:
    row = session.get(EvalOutputItem, item_id)
    if (
        row is None
        or row.organization_id != org_id
        or row.run_id != run_id
        or row.eval_id != eval_id
    ):
        raise NotFound(f"No such output item: {item_id}", param="output_item_id", code="not_found")
    return row


def check_job_evals(
    session: Session, storage: Storage, settings: Settings, org_id: str, entries: list, model: str
) -> None:
    """A fine-tuning job's `evaluation.evals`, checked at job creation as a run on `model`
    (the job's starting model) would be: 400s name `evaluation.evals[i]...`."""
    for i, entry in enumerate(entries):
        where = f"evaluation.evals[{i}]"
        ev = get_eval(session, org_id, entry.eval_id, param=f"{where}.eval_id")
        source = entry.data_source
        if source.get("type") != "completions" or "model" in source:
            raise InvalidRequest(
                "a job's eval runs a completions data source on each candidate's weights: "
                "give type 'completions' and no model",
                param=f"{where}.data_source",
            )
        body = RunCreate(data_source={**source, "model": model})
        try:
            check_run(session, storage, settings, org_id, ev, body)
        except InvalidRequest as exc:
            param = (exc.param or "data_source").replace("data_source", f"{where}.data_source", 1)
            raise InvalidRequest(str(exc), param=param) from None
