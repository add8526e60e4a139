"""Eval runs on real Postgres, executed as a worker executes them (core.evals.execute) over a
jsonl data source (the rows bring their samples, so no model is needed): a run whose worker
died resumes from its stored rows, a cancelled run stores nothing more, a run whose lease is
live is not taken by a second worker, and an organization runs one eval run at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.evals import service
from core.evals.criteria import parse_criteria
from core.evals.execute import claim, execute, grade_row, store_item
from core.evals.reconcile import runs_to_offer
from core.evals.spec import EvalCreate, RunCreate
from core.graders.base import GraderTools
from core.graders.grade import bind
from core.persistence.db import session_scope
from core.persistence.eval_models import EvalOutputItem, EvalRun
from core.persistence.models import Organization, utcnow
from core.settings import Settings

ROWS = [
    {"item": {"answer": "Paris"}, "sample": {"output_text": "paris"}},
    {"item": {"answer": "Rome"}, "sample": {"output_text": "Madrid"}},
    {"item": {"answer": "Oslo"}, "sample": {"output_text": "Oslo"}},
]
CRITERIA = [
    {
        "type": "string_check",
        "name": "same_city",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "ilike",
    },
    {
        "type": "text_similarity",
        "name": "close",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.9,
    },
]


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    """On a database of its own: the session's stack shares `pg_url`, and its reconciler
    would offer this module's lost runs before the test's own call does."""
    from core.persistence.migrate import upgrade
    from tests.conftest import fresh_database

    with fresh_database() as url:
        upgrade(url)
        yield Settings(
            database={"url": url},
            evals={"max_running_runs_per_org": 1},
            jobs={"lease_timeout_s": 60},
        )


def _org(settings: Settings, name: str) -> str:
    with session_scope(settings.resolved_database_url) as s:
        s.add(Organization(id=f"org-{name}", name=name))
    return f"org-{name}"


def _run(settings: Settings, org: str) -> str:
    config = {"type": "custom", "item_schema": {"type": "object", "properties": {"answer": {}}}}
    body = EvalCreate(data_source_config=config, testing_criteria=CRITERIA)
    source = {"type": "jsonl", "source": {"type": "file_content", "content": ROWS}}
    with session_scope(settings.resolved_database_url) as s:
        ev = service.create_eval(s, settings, org, body)
        run = service.create_run(s, None, settings, org, ev.id, RunCreate(data_source=source))
        return run.id


def _items(settings: Settings, run_id: str) -> dict[int, EvalOutputItem]:
    with session_scope(settings.resolved_database_url) as s:
        rows = s.scalars(select(EvalOutputItem).where(EvalOutputItem.run_id == run_id))
        return {row.item_index: row for row in rows}


def _tools(settings: Settings) -> GraderTools:
    return GraderTools(settings=settings, usage={})


def test_a_run_whose_worker_died_resumes_from_its_stored_rows(settings):
    org = _org(settings, "resume")
    run_id = _run(settings, org)
    claimed = claim(settings, run_id, "lathe@dead")
    criteria = parse_criteria(CRITERIA, settings)
    for c in criteria:
        bind(c.grader, _tools(settings))
    results, usage, errored = grade_row(criteria, _tools(settings), "paris", ROWS[0]["item"])
    assert store_item(settings, claimed, "lathe@dead", 0, ROWS[0], (results, {}, usage, errored))
    first = _items(settings, run_id)[0].id
    with session_scope(settings.resolved_database_url) as s:  # the worker stops renewing
        s.get(EvalRun, run_id).lease_expires_at = utcnow() - timedelta(seconds=1)
    with session_scope(settings.resolved_database_url) as s:
        assert run_id in runs_to_offer(s, settings)
    assert execute(settings, run_id, "lathe@alive", _tools(settings), None) == "completed"
    items = _items(settings, run_id)
    assert sorted(items) == [0, 1, 2] and items[0].id == first  # row 0 was not graded twice
    assert [items[i].status for i in range(3)] == ["pass", "fail", "pass"]
    with session_scope(settings.resolved_database_url) as s:
        run = s.get(EvalRun, run_id)
        assert run.status == "completed" and run.attempts == 2
        assert run.result_counts == {"total": 3, "passed": 2, "failed": 1, "errored": 0}
        assert run.per_testing_criteria_results == {
            "same_city": {"passed": 2, "failed": 1},
            "close": {"passed": 2, "failed": 1},
        }


def test_a_cancelled_run_stores_nothing_more(settings):
    org = _org(settings, "cancel")
    run_id = _run(settings, org)
    claimed = claim(settings, run_id, "lathe@w1")
    with session_scope(settings.resolved_database_url) as s:
        ev_id = s.get(EvalRun, run_id).eval_id
        assert service.cancel_run(s, org, ev_id, run_id).status == "canceled"
    outcome = ([], {}, {}, False)
    assert not store_item(settings, claimed, "lathe@w1", 0, ROWS[0], outcome)
    assert execute(settings, run_id, "lathe@w2", _tools(settings), None) is None
    assert _items(settings, run_id) == {}


def test_a_live_lease_and_the_organizations_share_keep_other_workers_off(settings):
    org, other = _org(settings, "share"), _org(settings, "neighbour")
    first, second = _run(settings, org), _run(settings, org)
    assert claim(settings, first, "lathe@w1") is not None
    assert claim(settings, first, "lathe@w2") is None  # its lease is live
    assert claim(settings, second, "lathe@w2") is None  # the organization's one running run
    with session_scope(settings.resolved_database_url) as s:
        assert s.get(EvalRun, second).status == "queued"
    neighbours = _run(settings, other)  # another organization is not held back
    assert execute(settings, neighbours, "lathe@w2", _tools(settings), None) == "completed"


def test_a_jobs_run_whose_process_died_fails_rather_than_going_to_a_worker(settings):
    """A fine-tuning job's own run (core.evals.gate) is answered by weights only its process
    holds: when that process stops renewing the lease, no worker could take the run over."""
    run_id = _run(settings, _org(settings, "job-owned"))
    with session_scope(settings.resolved_database_url) as s:
        run = s.get(EvalRun, run_id)
        run.status, run.lease_owner = "in_progress", "job:ftjob-dead"
        run.lease_expires_at = utcnow() - timedelta(seconds=1)
    with session_scope(settings.resolved_database_url) as s:
        assert run_id not in runs_to_offer(s, settings)
    with session_scope(settings.resolved_database_url) as s:
        run = s.get(EvalRun, run_id)
        assert run.status == "failed" and run.error["code"] == "job_process_stopped"
