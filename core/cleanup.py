"""The sweeper: removes what a crash or an outage left half-written, so nothing leaks.

Objects are stored first and recorded after (a row never names missing bytes), so a failure
between the two leaves bytes that nothing points at: an upload whose API died before its File
row, a checkpoint whose worker died mid-upload, a result file of a success whose commit failed.
The sweeper deletes every object under `orgs/` that no row refers to, once it is older than
LATHE_SWEEP_AFTER_S (younger ones may still be being recorded), never under a job that is
waiting or running (its worker may be uploading a checkpoint or its artifact right now, or be
about to claim it). It expires Uploads (core.uploads) left pending
past their hour, removing their parts. It also aborts
S3 multipart uploads left incomplete and removes temp files of uploads and training runs that
a killed process left in the temp directory. The leading API process runs it at start-up and every
LATHE_SWEEP_INTERVAL_S.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches.service import live_prefixes as batch_prefixes
from core.exports import merged_prefix
from core.jobs.checkpoints import job_prefix
from core.jobs.states import JobStatus
from core.persistence.models import Checkpoint, File, Job, Model
from core.persistence.tinker_models import TinkerCheckpoint
from core.storage import Storage
from core.tinker.service import expire_tinker_checkpoints
from core.uploads import expire_uploads, live_upload_prefixes

log = logging.getLogger(__name__)

TEMP_PREFIXES = ("lathe-upload-", "lathe-ftjob-", "lathe-run-")
"""Temp directories of uploads (core.files), job runs (core.runs.runner) and supervisors."""
_JOB_IN_NAME = re.compile(r"(ftjob-[A-Za-z0-9]+)")
ACTIVE = (JobStatus.VALIDATING_FILES.value, JobStatus.QUEUED.value, JobStatus.RUNNING.value)
"""Jobs a worker may be working for: their objects and temp files are never swept."""


@dataclass
class SweepReport:
    objects: int = 0
    uploads: int = 0
    temp_dirs: int = 0
    expired_uploads: int = 0


def live_prefixes(session: Session) -> tuple[set[str], set[str]]:
    """(prefixes rows refer to, prefixes of active jobs that must not be touched)."""
    live: set[str] = set(session.scalars(select(File.storage_key)))
    live |= set(session.scalars(select(Checkpoint.storage_key)))
    live |= live_upload_prefixes(session)  # parts of Uploads still pending (core.uploads)
    live |= set(session.scalars(select(TinkerCheckpoint.storage_key)))  # core.tinker states
    live |= batch_prefixes(session)  # results of batches still running (core.batches)
    for key in session.scalars(select(Model.artifact_key).where(Model.artifact_key.is_not(None))):
        live |= {key, merged_prefix(key)}
    active = {job_prefix(job) for job in session.scalars(select(Job).where(Job.status.in_(ACTIVE)))}
    return live, active


def _under(key: str, prefixes: set[str]) -> bool:
    parts = key.split("/")
    return any("/".join(parts[:i]) in prefixes for i in range(1, len(parts) + 1))


def orphaned_keys(session: Session, storage: Storage, older_than_s: float = 0.0) -> list[str]:
    """Keys under `orgs/` that no row refers to, older than `older_than_s`."""
    live, active = live_prefixes(session)
    cutoff = time.time() - older_than_s
    return [
        key
        for key, modified in storage.list_entries("orgs")
        if modified <= cutoff and not _under(key, live) and not _under(key, active)
    ]


def active_jobs(session: Session) -> set[str]:
    return set(session.scalars(select(Job.id).where(Job.status.in_(ACTIVE))))


def sweep_temp(older_than_s: float, active: set[str], root: Path) -> int:
    """Temp directories of uploads and runs older than `older_than_s` (their process died: a
    live one removes its own) in the deployment's own temp directory `root` (core.tempdirs),
    never the system's, where other deployments keep theirs. Those of active jobs are kept
    whatever their age."""
    cutoff, n = time.time() - older_than_s, 0
    if not root.is_dir():  # nothing written yet
        return 0
    for path in root.iterdir():
        if not path.name.startswith(TEMP_PREFIXES) or not path.is_dir():
            continue
        job = _JOB_IN_NAME.search(path.name)
        if job is not None and job.group(1) in active:
            continue
        try:
            if path.stat().st_mtime >= cutoff or _recently_written(path, cutoff):
                continue
        except FileNotFoundError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        n += 1
    return n


def _recently_written(directory: Path, cutoff: float) -> bool:
    """Anything inside written after `cutoff`: a run still working in an old directory."""
    return any(p.stat().st_mtime >= cutoff for p in directory.rglob("*") if p.exists())


def sweep(session: Session, storage: Storage, older_than_s: float, temp: Path) -> SweepReport:
    report = SweepReport()
    report.expired_uploads = expire_uploads(session, storage)
    expire_tinker_checkpoints(session)  # their bytes become orphans, removed just below
    for key in orphaned_keys(session, storage, older_than_s):
        storage.delete_prefix(key)
        report.objects += 1
    report.uploads = storage.abort_stale_uploads(older_than_s)
    report.temp_dirs = sweep_temp(older_than_s, active_jobs(session), temp)
    if report.expired_uploads:
        log.info("sweeper expired %d Uploads and removed their parts", report.expired_uploads)
    if report.objects or report.uploads or report.temp_dirs:
        log.warning(
            "sweeper removed %d orphaned objects, %d incomplete uploads, %d temp dirs",
            report.objects,
            report.uploads,
            report.temp_dirs,
        )
    return report
