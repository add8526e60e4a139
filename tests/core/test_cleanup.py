"""The sweeper removes exactly what nothing refers to: orphaned objects (not those of running
jobs), incomplete uploads and temp directories of dead processes."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from core.auth import get_or_create_org
from core.cleanup import orphaned_keys, sweep, sweep_temp
from core.ids import new_id
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Checkpoint, File, Job
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage


def _job(s, org_id: str, status: str) -> Job:
    job = Job(
        id=new_id("ftjob-"),
        organization_id=org_id,
        model="m",
        base_model="m",
        status=status,
        spec={},
        training_file="f",
        seed=1,
        result_files=[],
    )
    s.add(job)
    return job


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    return url


def test_orphans_go_and_everything_referenced_stays(db, tmp_path):
    storage = LocalStorage(tmp_path / "objects")
    src = tmp_path / "x"
    src.write_text("x")
    with session_scope(db) as s:
        org = get_or_create_org(s, "sweep").id
        done, running = _job(s, org, "succeeded"), _job(s, org, "running")
        s.flush()
        s.add(File(id="file-kept", organization_id=org, filename="a", purpose="fine-tune",
                   bytes=1, sha256="0", storage_key=f"orgs/{org}/files/file-kept",
                   status="processed"))  # fmt: skip
        ckpt = f"orgs/{org}/models/{done.id}/checkpoints/step-4"
        s.add(Checkpoint(id="ftckpt_1", job_id=done.id, step=4, storage_key=ckpt,
                         fine_tuned_model_checkpoint="ft:x:ckpt-step-4"))  # fmt: skip
    kept = [
        f"orgs/{org}/files/file-kept",
        f"{ckpt}/adapter/adapter_model.safetensors",
        f"orgs/{org}/models/{running.id}/checkpoints/step-8/adapter/a",  # being recorded
    ]
    orphans = [
        f"orgs/{org}/files/file-never-recorded",  # the API died between put and row
        f"orgs/{org}/models/{done.id}/checkpoints/step-8/state/optimizer.pt",  # cut off
        f"orgs/{org}/models/{done.id}/artifact/adapter_model.safetensors",  # commit failed
    ]
    for key in kept + orphans:
        storage.put_file(key, src)
    stale = storage.root / f"orgs/{org}/files/.upload-abc"
    stale.write_text("half")
    with session_scope(db) as s:
        assert sorted(orphaned_keys(s, storage)) == sorted(orphans)
        assert orphaned_keys(s, storage, older_than_s=3600) == []  # too young to judge
        report = sweep(s, storage, 0, tmp_path / "tmp")
    assert (report.objects, report.uploads) == (3, 1)
    assert sorted(k for k in storage.list_keys("orgs")) == sorted(kept) and not stale.exists()


def test_temp_dirs_of_dead_processes_go_but_not_those_of_active_jobs(tmp_path):
    old = time.time() - 7200
    for name in ("lathe-upload-x1", "lathe-ftjob-Dead1-abc", "lathe-ftjob-Live1-abc", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
        os.utime(tmp_path / name / "f", (old, old))
        os.utime(tmp_path / name, (old, old))
    assert sweep_temp(3600, {"ftjob-Live1"}, root=tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lathe-ftjob-Live1-abc", "other"]


def test_two_deployments_on_one_host_never_sweep_each_other(tmp_path):
    """Each deployment keeps its temp files under its own directory and sweeps only that: a
    stale-looking run directory of another deployment (whose jobs this database does not
    know) is never touched, while this deployment's own dead ones go."""
    from core.settings import Settings
    from core.tempdirs import temp_root

    mine = Settings(data_dir=tmp_path / "a")
    theirs = Settings(data_dir=tmp_path / "b")
    old = time.time() - 7200
    for settings in (mine, theirs):
        run = temp_root(settings) / "lathe-run-ftjob-Their1-abc"
        run.mkdir()
        os.utime(run, (old, old))
    assert temp_root(mine) != temp_root(theirs)
    assert not str(temp_root(mine)).startswith(tempfile.gettempdir() + "/lathe-")
    assert sweep_temp(3600, set(), temp_root(mine)) == 1
    assert [p.name for p in temp_root(theirs).iterdir()] == ["lathe-run-ftjob-Their1-abc"]


def test_an_api_starting_removes_uploads_a_killed_api_left(tmp_path):
    """An upload directory names the receiving process: one whose process is gone goes at
    start-up (not after the sweeper's hour); a live process's stays."""
    import subprocess
    import sys

    from core.settings import Settings
    from core.tempdirs import remove_dead_uploads, temp_root, upload_dir

    settings = Settings(data_dir=tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    dead = temp_root(settings) / f"lathe-upload-{gone}-abc"
    dead.mkdir()
    (dead / "big.jsonl").write_bytes(b"x" * 1024)
    with upload_dir(settings) as live:
        assert remove_dead_uploads(settings) == 1
        assert not dead.exists() and Path(live).exists()


def test_incomplete_multipart_uploads_are_aborted(s3_endpoint, s3_bucket):
    storage = S3Storage(
        s3_bucket, f"sweep-{os.getpid()}", endpoint_url=s3_endpoint, region="us-east-1"
    )
    storage.client.create_multipart_upload(Bucket=s3_bucket, Key=storage._key("orgs/o/files/big"))
    # (moto reports every upload as initiated in 2010, so the age cut-off is tested on the
    # local store above, with its .upload- temp files)
    assert storage.abort_stale_uploads(0) == 1
    uploads = storage.client.list_multipart_uploads(Bucket=s3_bucket, Prefix=storage.prefix)
    assert not uploads.get("Uploads")
