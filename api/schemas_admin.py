"""Wire schemas of the operator endpoints (/v1/admin): keys and organizations."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas import ts
from core.admin import KeyInfo, OrgInfo


class ApiKeyObject(BaseModel):
    id: str
    object: Literal["organization.api_key"] = "organization.api_key"
    organization: str
    name: str | None = None
    display: str = Field(description="The key's first characters, enough to recognise it.")
    created_at: int
    revoked_at: int | None = None
    key: str | None = Field(None, description="The key itself: only in the answer to create.")

    @classmethod
    def of(cls, info: KeyInfo, key: str | None = None) -> ApiKeyObject:
        return cls(
            id=info.id,
            organization=info.organization,
            name=info.name,
            display=info.display,
            created_at=ts(info.created_at) or 0,
            revoked_at=ts(info.revoked_at),
            key=key,
        )


class CreateKeyRequest(BaseModel):
    org: str = Field(max_length=63, description="Organization (created if new), a slug.")
    name: str | None = Field(None, max_length=128)


class OrganizationObject(BaseModel):
    id: str
    object: Literal["organization"] = "organization"
    name: str
    created_at: int
    active_keys: int

    @classmethod
    def of(cls, info: OrgInfo) -> OrganizationObject:
        return cls(
            id=info.id,
            name=info.name,
            created_at=ts(info.created_at) or 0,
            active_keys=info.active_keys,
        )
