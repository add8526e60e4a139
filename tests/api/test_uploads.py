"""OpenAI's Uploads API through the official `openai` client against a real `lathe serve`
(embedded: SQLite, local objects, no worker): a file sent in parts completes into a File
validated as a direct upload is, usable by a job; every mistake is a 400 naming its field;
another organization's upload is a 404; cancel leaves no parts behind (expiry and S3: in
tests/core/test_uploads.py)."""

from __future__ import annotations

import hashlib
import json

import openai
import pytest

from tests.utils.api_server import ADMIN_KEY

ROWS = b"".join(
    (
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"question {i}?"},
                    {"role": "assistant", "content": f"answer {i}."},
                ]
            }
        )
        + "\n"
    ).encode()
    for i in range(12)
)
PART_LIMIT = 4096


@pytest.fixture(scope="module")
def server(embedded_api):
    assert embedded_api.env["LATHE_MAX_UPLOAD_PART_BYTES"] == str(PART_LIMIT)
    return embedded_api.as_org("uploads")


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=server.key, max_retries=0, timeout=60)


def _parts_on_disk(server, upload_id: str) -> list[str]:
    return [p.name for p in (server.data_dir).rglob(f"*/uploads/{upload_id}/*")]


def _error(exc: pytest.ExceptionInfo) -> dict:
    return exc.value.response.json()["error"]


def test_a_chunked_upload_is_a_processed_file_a_job_can_train_on(server, client):
    upload = client.uploads.upload_file_chunked(
        file=ROWS,
        filename="train.jsonl",
        bytes=len(ROWS),
        mime_type="application/jsonl",
        purpose="fine-tune",
        part_size=len(ROWS) // 3 + 1,  # three parts
        md5=hashlib.md5(ROWS).hexdigest(),
    )
    assert (upload.object, upload.status, upload.bytes) == ("upload", "completed", len(ROWS))
    assert upload.expires_at > upload.created_at
    f = upload.file
    assert f is not None
    assert (f.status, f.bytes, f.filename) == ("processed", len(ROWS), "train.jsonl")
    direct = client.files.create(file=("train.jsonl", ROWS), purpose="fine-tune")
    for field in ("status", "status_details", "bytes", "sha256", "format", "n_examples"):
        assert getattr(f, field) == getattr(direct, field), field  # validated alike
    assert client.files.content(f.id).content == ROWS  # the parts joined in order
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    assert job.training_file == f.id
    assert _parts_on_disk(server, upload.id) == []  # parts removed once completed


def _pending(client, size: int = len(ROWS)):
    return client.uploads.create(
        bytes=size, filename="t.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )


def test_completion_checks_bytes_part_ids_and_md5(server, client):
    upload = _pending(client)
    half = len(ROWS) // 2
    first = client.uploads.parts.create(upload.id, data=ROWS[:half])
    second = client.uploads.parts.create(upload.id, data=ROWS[half:])
    assert (first.object, first.upload_id) == ("upload.part", upload.id)
    cases = [
        ({"part_ids": [first.id]}, "bytes"),  # half the announced bytes
        ({"part_ids": [first.id, "part_nope"]}, "part_ids[1]"),
        ({"part_ids": []}, "part_ids"),
        ({"part_ids": [first.id, first.id]}, "part_ids"),
        ({"part_ids": [first.id, second.id], "md5": "0" * 32}, "md5"),
    ]
    for kwargs, param in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            client.uploads.complete(upload.id, **kwargs)
        assert _error(exc)["param"] == param, kwargs
    # the order is the order of part_ids: reversed parts are another file
    done = client.uploads.complete(upload.id, part_ids=[second.id, first.id])
    assert client.files.content(done.file.id).content == ROWS[half:] + ROWS[:half]


def test_create_and_parts_refuse_what_they_cannot_honour(server, client):
    bad = [
        ({"bytes": 0}, "bytes"),
        ({"purpose": "assistants"}, "purpose"),
        ({"mime_type": "not a type"}, "mime_type"),
    ]
    for change, param in bad:
        body = {
            "bytes": 10,
            "filename": "t.jsonl",
            "mime_type": "application/jsonl",
            "purpose": "fine-tune",
            **change,
        }
        with pytest.raises(openai.BadRequestError) as exc:
            client.uploads.create(**body)
        assert _error(exc)["param"] == param
    with pytest.raises(openai.BadRequestError) as exc:
        client.uploads.create(
            bytes=10,
            filename="t.jsonl",
            mime_type="application/jsonl",
            purpose="fine-tune",
            expires_after={"anchor": "created_at", "seconds": 3600},
        )
    assert _error(exc)["param"] == "expires_after"
    upload = _pending(client, size=PART_LIMIT * 2)
    with pytest.raises(openai.BadRequestError) as exc:  # over max_upload_part_bytes
        client.uploads.parts.create(upload.id, data=b"x" * (PART_LIMIT + 1))
    assert _error(exc)["param"] == "data"
    with pytest.raises(openai.APIStatusError) as exc:  # refused by its length, unread
        client.uploads.parts.create(upload.id, data=b"x" * (PART_LIMIT + 100_000))
    assert exc.value.status_code == 413 and _error(exc)["param"] == "data"
    client.uploads.parts.create(upload.id, data=b"x" * PART_LIMIT)
    client.uploads.parts.create(upload.id, data=b"x" * (PART_LIMIT - 1))
    with pytest.raises(openai.BadRequestError) as exc:  # one byte past the announced size
        client.uploads.parts.create(upload.id, data=b"xx")
    assert _error(exc)["param"] == "data"


def test_cancel_removes_the_parts_and_ends_the_upload(server, client):
    upload = _pending(client)
    part = client.uploads.parts.create(upload.id, data=ROWS)
    assert _parts_on_disk(server, upload.id) == [part.id]
    cancelled = client.uploads.cancel(upload.id)
    assert (cancelled.status, cancelled.file) == ("cancelled", None)
    assert _parts_on_disk(server, upload.id) == []
    with pytest.raises(openai.BadRequestError) as exc:
        client.uploads.complete(upload.id, part_ids=[part.id])
    assert _error(exc)["code"] == "upload_cancelled"
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload.id, data=b"x")
    with pytest.raises(openai.NotFoundError):
        client.uploads.cancel("upload_nope")


def test_another_organizations_upload_is_a_404(server, client):
    upload = _pending(client)
    part = client.uploads.parts.create(upload.id, data=ROWS)
    other = openai.OpenAI(base_url=server.url, api_key=server.new_key("rival"), max_retries=0)
    calls = [
        lambda: other.uploads.parts.create(upload.id, data=b"x"),
        lambda: other.uploads.complete(upload.id, part_ids=[part.id]),
        lambda: other.uploads.cancel(upload.id),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        assert _error(exc)["param"] == "upload_id"
    assert client.uploads.complete(upload.id, part_ids=[part.id]).status == "completed"
    rivals = other.uploads.create(
        bytes=1, filename="r.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    with server.client(ADMIN_KEY) as admin:  # an organization with uploads can be deleted
        assert admin.delete("/admin/organizations/rival").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        other.uploads.cancel(rivals.id)
