"""OpenAI's Uploads API: a file announced by its size, sent in parts, completed into a File.

Each part is stored as an object under `orgs/{org}/uploads/{upload}/` (before its row, as
files are). Completion streams the named parts, in the order named, into one temp file in
CHUNK-sized reads (bounded memory whatever the size), checks the announced `bytes` and the
`md5`, then hands the file to core.files.ingest_file: the File validates exactly as a direct
upload does. The parts are deleted on completion and on cancel; the sweeper expires
uploads left pending past `expires_at` and removes their parts.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import files
from core.errors import InvalidRequest, NotFound
from core.ids import new_id
from core.persistence.lifecycle import Lifecycle
from core.persistence.models import File
from core.persistence.upload_models import Upload, UploadPart
from core.settings import Settings, get_settings
from core.storage import Storage
from core.storage.base import CHUNK
from core.tempdirs import upload_dir


class UploadStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


UPLOADS = Lifecycle(
    Upload,
    {
        UploadStatus.PENDING: frozenset(
            {UploadStatus.COMPLETED, UploadStatus.CANCELLED, UploadStatus.EXPIRED}
        )
    },
)
"""Only a pending upload moves: completed, cancelled, or expired past its hour."""

MAX_TOTAL_BYTES = 8 * 1024**3
"""OpenAI's bound on one Upload; Lathe's `max_upload_bytes` may be lower and then wins."""
_MIME = re.compile(r"^[\w.+-]+/[\w.+-]+$")


def upload_prefix(org_id: str, upload_id: str) -> str:
    return f"orgs/{org_id}/uploads/{upload_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def create_upload(
    session: Session,
    settings: Settings,
    org_id: str,
    *,
    filename: str,
    purpose: str,
    mime_type: str,
    size: int,
) -> Upload:
    files.check_purpose(purpose)
    limit = min(MAX_TOTAL_BYTES, settings.uploads.max_bytes)
    if size < 1 or size > limit:
        raise InvalidRequest(f"bytes must be between 1 and {limit}, got {size}", param="bytes")
    if not _MIME.match(mime_type):
        raise InvalidRequest(f"mime_type is not a MIME type: {mime_type!r}", param="mime_type")
    now = _now()
    row = Upload(
        id=new_id("upload_"),
        organization_id=org_id,
        filename=files.safe_filename(filename),
        purpose=purpose,
        mime_type=mime_type,
        bytes=size,
        status=UploadStatus.PENDING.value,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.uploads.expires_s),
    )
    session.add(row)
    session.flush()
    return row


def get_upload(session: Session, org_id: str, upload_id: str, *, lock: bool = False) -> Upload:
    query = select(Upload).where(Upload.id == upload_id, Upload.organization_id == org_id)
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"No such Upload object: {upload_id}", param="upload_id")
    return row


def _pending(row: Upload) -> Upload:
    """Uploads past their hour turn `expired` here as well as in the sweeper."""
    if row.status == UploadStatus.PENDING and row.expires_at <= _now():
        UPLOADS.move(row, UploadStatus.EXPIRED)
    if row.status != UploadStatus.PENDING:
        raise InvalidRequest(
            f"Upload {row.id} is {row.status}; only a pending upload takes parts or completes",
            param="upload_id",
            code=f"upload_{row.status}",
        )
    return row


def add_part(
    session: Session,
    storage: Storage,
    settings: Settings,
    org_id: str,
    upload_id: str,
    data: BinaryIO,
    size: int,
) -> UploadPart:
    """Store one part. Its size is checked before a byte is stored: at most
    `max_upload_part_bytes`, and the parts so far may not pass the announced `bytes`."""
    row = _pending(get_upload(session, org_id, upload_id))
    if size < 1 or size > settings.uploads.max_part_bytes:
        raise InvalidRequest(
            f"a part must hold 1 to {settings.uploads.max_part_bytes} bytes, got {size}",
            param="data",
        )
    received = sum(session.scalars(select(UploadPart.bytes).where(UploadPart.upload_id == row.id)))
    if received + size > row.bytes:
        raise InvalidRequest(
            f"parts would hold {received + size} bytes, more than the upload's {row.bytes}",
            param="data",
        )
    part_id = new_id("part_")
    key = f"{upload_prefix(org_id, row.id)}/{part_id}"
    storage.put_stream(key, data)
    part = UploadPart(id=part_id, upload_id=row.id, bytes=size, storage_key=key)
    session.add(part)
    session.flush()
    return part


def _named_parts(session: Session, row: Upload, part_ids: list[str]) -> list[UploadPart]:
    if not part_ids:
        raise InvalidRequest("part_ids must name at least one part", param="part_ids")
    if len(set(part_ids)) != len(part_ids):
        raise InvalidRequest("part_ids names a part more than once", param="part_ids")
    found = {
        p.id: p
        for p in session.scalars(
            select(UploadPart).where(UploadPart.upload_id == row.id, UploadPart.id.in_(part_ids))
        )
    }
    for i, part_id in enumerate(part_ids):
        if part_id not in found:
            raise InvalidRequest(
                f"No such part of upload {row.id}: {part_id}", param=f"part_ids[{i}]"
            )
    return [found[p] for p in part_ids]


def _concatenate(storage: Storage, parts: list[UploadPart], dest: Path) -> tuple[str, str]:
    """(sha256, md5) of the parts written end to end into `dest`, one chunk at a time."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(dest, "wb") as out:
        for part in parts:
            for chunk in storage.iter_bytes(part.storage_key, CHUNK):
                sha.update(chunk)
                md5.update(chunk)
                out.write(chunk)
    return sha.hexdigest(), md5.hexdigest()


def complete_upload(
    session: Session,
    storage: Storage,
    org_id: str,
    upload_id: str,
    part_ids: list[str],
    md5: str | None,
) -> tuple[Upload, File]:
    row = _pending(get_upload(session, org_id, upload_id, lock=True))
    parts = _named_parts(session, row, part_ids)
    total = sum(p.bytes for p in parts)
    if total != row.bytes:
        raise InvalidRequest(
            f"the parts named hold {total} bytes; the upload was created with bytes={row.bytes}",
            param="bytes",
        )
    with upload_dir(get_settings()) as tmp:
        path = Path(tmp) / row.filename
        sha, digest = _concatenate(storage, parts, path)
        if md5 is not None and md5.lower() != digest:
            raise InvalidRequest(f"md5 {md5} does not match the parts' MD5 {digest}", param="md5")
        file = files.ingest_file(session, storage, org_id, path, row.purpose, sha)
    UPLOADS.move(row, UploadStatus.COMPLETED)
    row.file_id = file.id
    session.flush()
    return row, file


def cancel_upload(session: Session, org_id: str, upload_id: str) -> Upload:
    row = get_upload(session, org_id, upload_id, lock=True)
    if row.status != UploadStatus.CANCELLED:
        _pending(row)
        UPLOADS.move(row, UploadStatus.CANCELLED)
    session.flush()
    return row


def discard_parts(storage: Storage, row: Upload) -> None:
    """After the commit that ended the upload: should this fail, the sweeper removes them (an
    ended upload's prefix is no longer live)."""
    storage.delete_prefix(upload_prefix(row.organization_id, row.id))


def live_upload_prefixes(session: Session) -> set[str]:
    """Prefixes of uploads still pending and unexpired: the sweeper keeps their parts."""
    rows = session.execute(
        select(Upload.organization_id, Upload.id).where(
            Upload.status == UploadStatus.PENDING.value, Upload.expires_at > _now()
        )
    )
    return {upload_prefix(org, upload) for org, upload in rows}


def expire_uploads(session: Session, storage: Storage) -> int:
    """Mark pending uploads past `expires_at` expired and remove their parts; returns how many."""
    stale = session.scalars(
        select(Upload).where(
            Upload.status == UploadStatus.PENDING.value, Upload.expires_at <= _now()
        )
    ).all()
    if not stale:
        return 0
    UPLOADS.move_where(session, UploadStatus.EXPIRED, Upload.id.in_([r.id for r in stale]))
    session.commit()
    for row in stale:
        discard_parts(storage, row)
    return len(stale)
