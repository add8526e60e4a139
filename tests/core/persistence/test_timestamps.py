"""Every stored timestamp reads back zone-aware UTC, on SQLite (the embedded default, which
keeps no zone) as on Postgres, so no caller converts; and the schema is the migrations'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

import core.persistence.batch_models
import core.persistence.drift_models
import core.persistence.eval_models
import core.persistence.tinker_models
import core.persistence.upload_models
import core.persistence.webhook_models  # noqa: F401  (their tables join Base.metadata)
from core.jobs.states import JobStatus
from core.persistence.db import get_engine, session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Base, Job, Organization
from core.runs.lease import expired, renew
from tests.conftest import fresh_database
from tests.core.jobs.test_states import _job


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ts') / 'lathe.db'}"
        upgrade(url)
        yield url
        return
    with fresh_database() as url:
        upgrade(url)
        yield url


def test_a_timestamp_reads_back_aware_utc_whatever_zone_it_was_written_in(db):
    written = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    with session_scope(db) as s:
        s.add(Organization(id="org-ts", name="ts", created_at=written))
    with session_scope(db) as s:
        read = s.get(Organization, "org-ts").created_at
        [selected] = s.scalars(select(Organization.created_at).where(Organization.id == "org-ts"))
        # compared in the database against a bound aware value: the same instant
        [found] = s.scalars(select(Organization.id).where(Organization.created_at == written))
    assert read == selected == written and found == "org-ts"
    assert read.tzinfo == UTC and read.hour == 4 and read.day == 2
    assert read.timestamp() == written.timestamp()  # not shifted by the host's zone


def test_a_lease_read_back_compares_with_now(db):
    """Renewed, then read in another session: no caller converts before comparing."""
    job_id = _job(db, JobStatus.RUNNING)
    with session_scope(db) as s:
        s.get(Job, job_id).attempts = 1
    with session_scope(db) as s:
        assert renew(s, job_id, attempt=1, timeout_s=60)
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        assert not expired(job)
        assert expired(job, now=job.lease_expires_at + timedelta(seconds=1))


def test_the_models_match_the_migrated_schema(db):
    """The type decorator keeps `DateTime(timezone=True)`'s DDL: no migration is owed."""
    with get_engine(db).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_timestamp_arithmetic_with_an_interval_binds_the_interval():
    """`created_at - timedelta(...)` in SQL (the Tinker TTL sweep does it): the interval is
    bound as an interval, not run through the timestamp's UTC conversion (Postgres: SQLite
    does no date arithmetic on stored text)."""
    from sqlalchemy import update

    written = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with fresh_database() as url:
        upgrade(url)
        with session_scope(url) as s:
            s.add(Organization(id="org-iv", name="iv", created_at=written))
        with session_scope(url) as s:
            s.execute(
                update(Organization)
                .where(Organization.id == "org-iv")
                .values(created_at=Organization.created_at - timedelta(hours=1))
            )
        with session_scope(url) as s:
            assert s.get(Organization, "org-iv").created_at == written - timedelta(hours=1)
