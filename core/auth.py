"""Organizations and API keys. Keys are stored as SHA-256 digests and shown once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, Unauthorized
from core.ids import new_api_key, new_id
from core.persistence.models import ApiKey, Organization

_ORG_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def get_or_create_org(session: Session, name: str) -> Organization:
    """Org names appear inside model names (`ft:base:org:suffix:id`), so they are slugs."""
    if not _ORG_NAME.match(name):
        raise InvalidRequest(
            f"organization name must be a lowercase slug, got {name!r}", param="org"
        )
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        org = Organization(id=new_id("org-"), name=name)
        session.add(org)
        session.flush()
    return org


def create_api_key(session: Session, org_name: str, key_name: str | None = None) -> str:
    org = get_or_create_org(session, org_name)
    key = new_api_key()
    session.add(
        ApiKey(
            id=new_id("key_"),
            organization_id=org.id,
            key_hash=hash_key(key),
            display=key[:12] + "…",
            name=key_name,
        )
    )
    session.flush()
    return key


def authenticate(session: Session, key: str) -> Organization:
    row = session.execute(
        select(Organization)
        .join(ApiKey, ApiKey.organization_id == Organization.id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        raise Unauthorized("Incorrect API key provided.")
    return row


@dataclass(frozen=True)
class AuthedOrg:
    """Who a request acts for: a plain value, so it outlives the session that looked it up
    (auth runs before the route, and must not keep a database connection while it waits)."""

    id: str
    name: str
    key_id: str


def lookup_key(session: Session, key: str) -> AuthedOrg | None:
    """The organization a live (unrevoked) key belongs to, or None."""
    row = session.execute(
        select(Organization.id, Organization.name, ApiKey.id)
        .join(ApiKey, ApiKey.organization_id == Organization.id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    return AuthedOrg(*row) if row is not None else None
