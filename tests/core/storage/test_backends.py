"""Both storage backends behave the same: local directory and a real S3 endpoint (moto)."""

from __future__ import annotations

import io
import os

import pytest

from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Storage(
        bucket, f"unit-{os.getpid()}-{id(tmp_path)}", endpoint_url=endpoint, region="us-east-1"
    )


def test_stream_roundtrip_list_and_delete(storage, tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk
    storage.put_stream("orgs/a/files/f1", io.BytesIO(payload))
    assert storage.exists("orgs/a/files/f1")
    assert b"".join(storage.iter_bytes("orgs/a/files/f1")) == payload
    src = tmp_path / "x.json"
    src.write_text("{}")
    storage.put_file("orgs/a/models/j/artifact/x.json", src)
    storage.put_file("orgs/a/models/j/artifact/sub/y.json", src)
    assert storage.list_keys("orgs/a/models/j/artifact") == [
        "orgs/a/models/j/artifact/sub/y.json",
        "orgs/a/models/j/artifact/x.json",
    ]
    out = storage.download("orgs/a/models/j/artifact/sub/y.json", tmp_path / "d" / "y.json")
    assert out.read_text() == "{}"
    storage.delete_prefix("orgs/a/models/j")
    assert storage.list_keys("orgs/a/models/j/artifact") == []
    assert storage.exists("orgs/a/files/f1")


def test_failed_stream_leaves_nothing(storage):
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b):
            raise OSError("client went away")

    with pytest.raises(OSError):
        storage.put_stream("orgs/a/files/broken", Broken())
    assert not storage.exists("orgs/a/files/broken")


def test_local_keys_cannot_escape(tmp_path):
    with pytest.raises(ValueError):
        LocalStorage(tmp_path / "objects").put_stream("../outside", io.BytesIO(b"x"))


def test_delete_prefix_is_by_path_segment(storage):
    """Deleting checkpoint step-1 leaves step-10 alone, on both backends."""
    for key in ("ck/step-1/a", "ck/step-10/a", "ck/step-1x", "files/f-1", "files/f-12"):
        storage.put_stream(key, io.BytesIO(b"x"))
    storage.delete_prefix("ck/step-1")
    storage.delete_prefix("files/f-1")
    assert storage.list_keys("ck") == ["ck/step-10/a", "ck/step-1x"]
    assert storage.exists("files/f-12") and not storage.exists("files/f-1")
