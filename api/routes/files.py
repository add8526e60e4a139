"""`/v1/files`: upload, list, retrieve, download, delete (OpenAI's Files API)."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.from_thread
from fastapi import APIRouter, Form, Query, UploadFile
from fastapi.responses import StreamingResponse

from api.content_disposition import attachment
from api.deps import LimitsDep, OrgDep, SessionDep, SettingsDep, StorageDep
from api.schemas import DeletedObject, FileObject, ListResponse
from api.schemas_files import FileValidation, ValidateFileRequest
from api.streams import started
from core import files
from core.errors import InvalidRequest
from core.jobspec.recipe import SpecError
from core.jobspec.target_modules import check_target_modules
from core.registry import base_model_path, get_model
from core.training.dry_run import dry_run_file

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("", name="createFile", response_model=FileObject)
def create_file(
    file: UploadFile,
    purpose: Annotated[str, Form(min_length=1)],
    org: OrgDep,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    limits: LimitsDep,
) -> FileObject:
    """The multipart body is spooled (bounded by api.upload_limit) before this runs; the bytes
    count against the organization's daily upload quota before they are stored."""
    size = file.size if file.size is not None else file.file.seek(0, 2)
    file.file.seek(0)
    anyio.from_thread.run(limits.hit, limits.upload_bytes, org.id, size)
    row = files.create_file(
        session, storage, org.id, file.file, file.filename, purpose, settings.uploads.max_bytes
    )
    files.commit_file(session, storage, row)  # a failed commit removes the stored bytes
    return FileObject.from_row(row)


@router.get("", name="listFiles", response_model=ListResponse[FileObject])
def list_files(
    org: OrgDep,
    session: SessionDep,
    purpose: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Literal["asc", "desc"] = "desc",
) -> ListResponse[FileObject]:
    rows, more = files.list_files(session, org.id, purpose, after, limit, order)
    return ListResponse.of([FileObject.from_row(r) for r in rows], more)


@router.get("/{file_id}", name="retrieveFile", response_model=FileObject)
def retrieve_file(file_id: str, org: OrgDep, session: SessionDep) -> FileObject:
    return FileObject.from_row(files.get_file(session, org.id, file_id))


@router.get("/{file_id}/content", name="downloadFile", response_class=StreamingResponse)
def download_file(
    file_id: str, org: OrgDep, session: SessionDep, storage: StorageDep
) -> StreamingResponse:
    row = files.get_file(session, org.id, file_id)
    return StreamingResponse(
        started(storage.iter_bytes(row.storage_key)),
        media_type="application/octet-stream",
        headers={"Content-Disposition": attachment(row.filename)},
    )


@router.post("/{file_id}/validate", name="validateFile", response_model=FileValidation)
def validate_file(
    file_id: str,
    body: ValidateFileRequest,
    org: OrgDep,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> FileValidation:
    """Lathe: dry-run a dataset against a base model's tokenizer and chat template. A plain
    `def`: tokenizing a file is CPU work, run in the thread pool, off the event loop."""
    row = files.get_file(session, org.id, file_id)
    base = get_model(session, org.id, body.model).base_model
    if body.adapter is not None and body.adapter.type in ("lora", "qlora", "ia3"):
        try:  # as a job's creation checks them (core.jobspec.target_modules)
            check_target_modules(body.adapter.target_modules, base_model_path(settings, base))
        except SpecError as exc:
            raise InvalidRequest(str(exc), param=exc.param) from None
    report = dry_run_file(
        settings,
        storage,
        row,
        base_model=base,
        method=body.method.type,
        n_epochs=body.hyperparameters.n_epochs,
        max_seq_length=body.hyperparameters.max_seq_length,
        data=body.data,
        seed=body.seed,
    )
    return FileValidation(file_id=row.id, model=body.model, **report)


@router.delete("/{file_id}", name="deleteFile", response_model=DeletedObject)
def delete_file(
    file_id: str, org: OrgDep, session: SessionDep, storage: StorageDep
) -> DeletedObject:
    files.delete_file(session, storage, org.id, file_id)
    session.commit()
    return DeletedObject(id=file_id, object="file")
