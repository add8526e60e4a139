"""`/v1/uploads`: a file sent in parts (OpenAI's Uploads API); core.uploads does the work."""

from __future__ import annotations

import anyio.from_thread
from fastapi import APIRouter, UploadFile

from api.deps import LimitsDep, OrgDep, SessionDep, SettingsDep, StorageDep
from api.schemas_uploads import (
    CompleteUploadRequest,
    CreateUploadRequest,
    UploadObject,
    UploadPartObject,
)
from core import files, uploads
from core.errors import InvalidRequest
from core.persistence.models import File

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


@router.post("", name="createUpload", response_model=UploadObject)
def create_upload(
    body: CreateUploadRequest, org: OrgDep, session: SessionDep, settings: SettingsDep
) -> UploadObject:
    if body.expires_after is not None:
        raise InvalidRequest(
            "expires_after is not supported: Lathe's files are kept until deleted",
            param="expires_after",
        )
    row = uploads.create_upload(
        session,
        settings,
        org.id,
        filename=body.filename,
        purpose=body.purpose,
        mime_type=body.mime_type,
        size=body.bytes,
    )
    session.commit()
    return UploadObject.from_row(row)


@router.post("/{upload_id}/parts", name="addUploadPart", response_model=UploadPartObject)
def add_upload_part(
    upload_id: str,
    data: UploadFile,
    org: OrgDep,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    limits: LimitsDep,
) -> UploadPartObject:
    """The part is spooled (bounded by api.upload_limit) before this runs; its bytes count
    against the organization's daily upload quota, as a direct upload's do."""
    size = data.size if data.size is not None else data.file.seek(0, 2)
    data.file.seek(0)
    uploads.get_upload(session, org.id, upload_id)  # another org's id: 404 before the quota
    anyio.from_thread.run(limits.hit, limits.upload_bytes, org.id, size)
    part = uploads.add_part(session, storage, settings, org.id, upload_id, data.file, size)
    session.commit()
    return UploadPartObject.from_row(part)


@router.post("/{upload_id}/complete", name="completeUpload", response_model=UploadObject)
def complete_upload(
    upload_id: str,
    body: CompleteUploadRequest,
    org: OrgDep,
    session: SessionDep,
    storage: StorageDep,
) -> UploadObject:
    """A plain `def`: joining the parts and validating the file is I/O and CPU work."""
    row, file = uploads.complete_upload(
        session, storage, org.id, upload_id, body.part_ids, body.md5
    )
    files.commit_file(session, storage, file)  # a failed commit removes the joined file
    uploads.discard_parts(storage, row)
    return UploadObject.from_row(row, file)


@router.post("/{upload_id}/cancel", name="cancelUpload", response_model=UploadObject)
def cancel_upload(
    upload_id: str, org: OrgDep, session: SessionDep, storage: StorageDep
) -> UploadObject:
    row = uploads.cancel_upload(session, org.id, upload_id)
    session.commit()
    uploads.discard_parts(storage, row)
    file = session.get(File, row.file_id) if row.file_id else None
    return UploadObject.from_row(row, file)
