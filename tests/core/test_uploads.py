"""core.uploads on both object stores (a local directory, S3 as moto serves it): parts joined
in the order named into a File whose bytes are exactly theirs, the parts gone after; the
sweeper expires an Upload left pending past its hour and removes its parts, keeping a live
one's."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta

import pytest

from core.auth import get_or_create_org
from core.cleanup import sweep
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.upload_models import Upload
from core.settings import Settings
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage
from core.uploads import add_part, complete_upload, create_upload, discard_parts, upload_prefix

ROW = b'{"text": "a row of text"}\n'


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    return url


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
    return S3Storage(bucket, f"up-{os.getpid()}", endpoint_url=endpoint, region="us-east-1")


def _upload(s, settings, org: str, size: int) -> Upload:
    return create_upload(
        s, settings, org, filename="t.jsonl", purpose="fine-tune",
        mime_type="application/jsonl", size=size,
    )  # fmt: skip


def test_parts_join_in_the_order_named_into_a_file(db, storage, tmp_path):
    settings = Settings(data_dir=tmp_path)
    chunks = [ROW * 3, ROW, ROW * 2]
    with session_scope(db) as s:
        org = get_or_create_org(s, "parts").id
        row = _upload(s, settings, org, sum(map(len, chunks)))
        parts = [add_part(s, storage, settings, org, row.id, io.BytesIO(c), len(c)) for c in chunks]
        order = [parts[2].id, parts[0].id, parts[1].id]
        row, file = complete_upload(s, storage, org, row.id, order, md5=None)
        assert (row.status, file.status, file.n_examples) == ("completed", "processed", 6)
        key = file.storage_key
    assert b"".join(storage.iter_bytes(key)) == chunks[2] + chunks[0] + chunks[1]
    assert len(storage.list_keys(upload_prefix(org, row.id))) == 3
    discard_parts(storage, row)
    assert storage.list_keys(upload_prefix(org, row.id)) == []


def test_the_sweeper_expires_a_stale_upload_and_removes_its_parts(db, storage, tmp_path):
    settings = Settings(data_dir=tmp_path)
    with session_scope(db) as s:
        org = get_or_create_org(s, "sweep").id
        ids = []
        for _ in range(2):
            row = _upload(s, settings, org, len(ROW))
            add_part(s, storage, settings, org, row.id, io.BytesIO(ROW), len(ROW))
            ids.append(row.id)
        s.get(Upload, ids[0]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with session_scope(db) as s:
        assert sweep(s, storage, 0, tmp_path / "tmp").expired_uploads == 1
    with session_scope(db) as s:
        assert [s.get(Upload, i).status for i in ids] == ["expired", "pending"]
    assert storage.list_keys(upload_prefix(org, ids[0])) == []
    assert len(storage.list_keys(upload_prefix(org, ids[1]))) == 1  # a live upload's part stays


def test_an_upload_past_its_hour_takes_no_part_before_the_sweeper_runs(db, tmp_path):
    from core.errors import InvalidRequest

    settings, storage = Settings(data_dir=tmp_path), LocalStorage(tmp_path / "objects")
    with session_scope(db) as s:
        org = get_or_create_org(s, "late").id
        row = _upload(s, settings, org, len(ROW))
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        with pytest.raises(InvalidRequest) as exc:
            add_part(s, storage, settings, org, row.id, io.BytesIO(ROW), len(ROW))
        assert exc.value.code == "upload_expired"
