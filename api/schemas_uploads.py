"""Wire schemas of the Uploads API, as the `openai` SDK's `Upload` and `UploadPart` read them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import FileObject, ts
from core.persistence.models import File
from core.persistence.upload_models import Upload, UploadPart


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateUploadRequest(_Strict):
    bytes: int = Field(description="The size of the whole file; the parts must add up to it.")
    filename: str = Field(min_length=1, max_length=1024)
    mime_type: str = Field(min_length=1, max_length=255)
    purpose: str = Field(min_length=1)
    expires_after: dict[str, Any] | None = Field(
        None, description="Not supported: Lathe's files do not expire (400 when given)."
    )


class CompleteUploadRequest(_Strict):
    part_ids: list[str] = Field(description="The parts, in the order they make up the file.")
    md5: str | None = Field(None, description="If given, checked against the parts' MD5.")


class UploadObject(BaseModel):
    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: Literal["pending", "completed", "cancelled", "expired"]
    file: FileObject | None = None

    @classmethod
    def from_row(cls, row: Upload, file: File | None = None) -> UploadObject:
        return cls(
            id=row.id,
            bytes=row.bytes,
            created_at=ts(row.created_at) or 0,
            expires_at=ts(row.expires_at) or 0,
            filename=row.filename,
            purpose=row.purpose,
            status=row.status,
            file=FileObject.from_row(file) if file is not None else None,
        )


class UploadPartObject(BaseModel):
    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str

    @classmethod
    def from_row(cls, row: UploadPart) -> UploadPartObject:
        return cls(id=row.id, created_at=ts(row.created_at) or 0, upload_id=row.upload_id)
