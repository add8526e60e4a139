"""Uploaded files: streamed to storage in constant memory, validated, then recorded.

The database row is written only after the object is stored, so a row never points at
missing bytes; a failed upload leaves neither.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, NotFound, PayloadTooLarge
from core.ids import new_id
from core.persistence.models import File
from core.persistence.pagination import page
from core.settings import get_settings
from core.storage import Storage
from core.storage.base import CHUNK
from core.tempdirs import upload_dir

log = logging.getLogger(__name__)

PURPOSES = {"fine-tune", "evals", "batch"}
"""`evals`: benchmark task files (core.evaluation.benchmarks), checked as such on upload;
`batch`: Batch API input (core.batches), counted on upload, its lines read when it runs."""


def safe_filename(name: str | None) -> str:
    """Keep the basename only, printable characters, at most 255 bytes (no path traversal)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable())
    base = base.strip().lstrip(".") or "upload.jsonl"
    return base.encode()[:255].decode(errors="ignore")


def file_key(org_id: str, file_id: str) -> str:
    return f"orgs/{org_id}/files/{file_id}"


def _spool(stream: BinaryIO, dest: BinaryIO, max_bytes: int) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"file exceeds the {max_bytes} byte limit", param="file", code="file_too_large"
            )
        digest.update(chunk)
        dest.write(chunk)
    return size, digest.hexdigest()


def create_file(
    session: Session,
    storage: Storage,
    org_id: str,
    stream: BinaryIO,
    filename: str | None,
    purpose: str,
    max_bytes: int,
) -> File:
    check_purpose(purpose)
    name = safe_filename(filename)
    with upload_dir(get_settings()) as tmp:
        path = Path(tmp) / name
        with open(path, "wb") as out:
            size, sha = _spool(stream, out, max_bytes)
        if size == 0:
            raise InvalidRequest("the uploaded file is empty", param="file", code="empty_file")
        return ingest_file(session, storage, org_id, path, purpose, sha)


def check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise InvalidRequest(
            f"purpose must be one of {sorted(PURPOSES)}, got {purpose!r}", param="purpose"
        )


def ingest_file(
    session: Session, storage: Storage, org_id: str, path: Path, purpose: str, sha256: str
) -> File:
    """Validate a received file on disk as its purpose requires, then store and record it:
    one path for a direct upload and a completed Upload (core.uploads), so both report alike."""
    if purpose == "batch":
        status, details, fmt, n = _count_batch(path)
    else:
        status, details, fmt, n = (
            _validate_task(path) if purpose == "evals" else _validate(path, path.name)
        )
    return store_local_file(
        session,
        storage,
        org_id,
        path,
        purpose,
        sha256=sha256,
        status=status,
        status_details=details,
        format=fmt,
        n_examples=n,
    )


def store_local_file(
    session: Session, storage: Storage, org_id: str, path: Path, purpose: str, **fields
) -> File:
    """Store a file this process holds on disk (uploads, job result files), then record it."""
    if "sha256" not in fields:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        fields["sha256"] = digest.hexdigest()
    fields.setdefault("status", "processed")
    file_id = new_id("file-")
    key = file_key(org_id, file_id)
    storage.put_file(key, path)
    row = File(
        id=file_id,
        organization_id=org_id,
        filename=path.name,
        purpose=purpose,
        bytes=path.stat().st_size,
        storage_key=key,
        **fields,
    )
    try:
        session.add(row)
        session.flush()
    except BaseException:  # the row cannot be written (a database outage): nor the bytes kept
        discard_stored(storage, key)
        raise
    return row


def commit_file(session: Session, storage: Storage, row: File) -> None:
    """Commit the request that stored `row`'s bytes; a commit that fails removes them, rather
    than leave them to the sweeper's hour (59 MB were seen after a database outage)."""
    try:
        session.commit()
    except BaseException:
        discard_stored(storage, row.storage_key)
        raise


def discard_stored(storage: Storage, key: str) -> None:
    try:
        storage.delete_prefix(key)
    except Exception:  # storage down too: the sweeper is the backstop
        log.warning("could not remove %s after a failed upload; the sweeper will", key)


def _validate(path: Path, filename: str) -> tuple[str, str | None, str | None, int | None]:
    from core.data import validate_dataset

    report = validate_dataset(path, filename)
    fmt = report.format.value if report.format else None
    if report.ok:
        return "processed", None, fmt, report.n_examples
    details = "; ".join(
        f"line {e.line}: {e.field + ': ' if e.field else ''}{e.message}" for e in report.errors[:5]
    )
    if report.error_count > 5:
        details += f" (and {report.error_count - 5} more errors)"
    return "error", details, fmt, report.n_examples


def _count_batch(path: Path) -> tuple[str, str | None, str | None, int | None]:
    """A batch input file: its requests counted (a 400 past the limit); each line is read
    when the batch runs, where a bad one becomes an error-file line."""
    from core.settings import get_settings

    limit = get_settings().batches.max_requests
    n = 0
    with open(path, "rb") as f:
        for line in f:
            n += bool(line.strip())
            if n > limit:
                raise InvalidRequest(
                    f"a batch file holds at most {limit} requests", param="file",
                    code="batch_too_large",
                )  # fmt: skip
    return "processed", None, "jsonl", n


def _validate_task(path: Path) -> tuple[str, str | None, str | None, int | None]:
    """A benchmark task file: its kind (multiple_choice, exact_match, perplexity) as format."""
    from core.evaluation.benchmarks import TaskFileError, read_task_file

    try:
        kind, n = read_task_file(path)
    except (TaskFileError, UnicodeDecodeError) as exc:
        return "error", str(exc), None, None
    return "processed", None, kind, n


def get_file(session: Session, org_id: str, file_id: str, param: str = "file_id") -> File:
    row = session.get(File, file_id)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"No such File object: {file_id}", param=param, code="file_not_found")
    return row


def list_files(
    session: Session, org_id: str, purpose: str | None, after: str | None, limit: int, order: str
) -> tuple[list[File], bool]:
    query = select(File).where(File.organization_id == org_id)
    if purpose:
        query = query.where(File.purpose == purpose)
    cursor = get_file(session, org_id, after, param="after") if after else None
    return page(session, query, File, cursor, limit, desc=order == "desc")


def delete_file(session: Session, storage: Storage, org_id: str, file_id: str) -> None:
    row = get_file(session, org_id, file_id)
    session.delete(row)
    session.flush()
    storage.delete_prefix(row.storage_key)
