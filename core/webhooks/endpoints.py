"""An organization's webhook endpoints: what `/v1/webhook_endpoints` reads and writes.

Shapes follow the `openai` SDK's `client.webhooks.*` (create, retrieve, update, list, delete,
rotate_secret, test). The signing secret is returned by create and rotate_secret only.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, NotFound
from core.ids import new_id
from core.persistence.models import utcnow
from core.persistence.pagination import page
from core.persistence.webhook_models import WebhookDelivery, WebhookEndpoint
from core.settings import Settings
from core.webhooks import events, signing, urls

ROTATION_GRACE = timedelta(hours=24)


def check_event_types(types: list[str], param: str = "event_types") -> list[str]:
    """Only events Lathe sends: subscribing to one it never sends would look like a silence."""
    if not types:
        raise InvalidRequest("give at least one event type", param=param)
    for i, name in enumerate(types):
        if name not in events.EVENT_TYPES:
            raise InvalidRequest(
                f"Lathe does not send {name!r} events (it sends: {', '.join(events.EVENT_TYPES)})",
                param=f"{param}.{i}",
                code="unsupported_event_type",
            )
    return list(dict.fromkeys(types))


def create_endpoint(
    session: Session, settings: Settings, org_id: str, name: str, url: str, event_types: list[str]
) -> WebhookEndpoint:
    types = check_event_types(event_types)
    urls.check_param(url, settings.security.allow_private_urls)
    count = session.scalar(select(func.count()).where(WebhookEndpoint.organization_id == org_id))
    if (count or 0) >= settings.webhooks.max_endpoints_per_org:
        raise InvalidRequest(
            f"This organization has {count} webhook endpoints, the most allowed "
            f"(LATHE_WEBHOOK_MAX_ENDPOINTS_PER_ORG); delete one first",
            code="too_many_endpoints",
        )
    now = utcnow()
    row = WebhookEndpoint(
        id=new_id("we_"),
        organization_id=org_id,
        name=name,
        url=url,
        event_types=types,
        secret=signing.new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_endpoint(session: Session, org_id: str, endpoint_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"No such webhook endpoint: {endpoint_id}", param="webhook_endpoint_id")
    return row


def list_endpoints(
    session: Session, org_id: str, after: str | None, limit: int
) -> tuple[list[WebhookEndpoint], bool]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.organization_id == org_id)
    cursor = get_endpoint(session, org_id, after) if after else None
    return page(session, query, WebhookEndpoint, cursor, limit, desc=True)


def update_endpoint(
    session: Session,
    settings: Settings,
    org_id: str,
    endpoint_id: str,
    *,
    name: str | None = None,
    url: str | None = None,
    event_types: list[str] | None = None,
) -> WebhookEndpoint:
    row = get_endpoint(session, org_id, endpoint_id)
    changed = False
    if event_types is not None and (types := check_event_types(event_types)) != row.event_types:
        row.event_types, changed = types, True
    if url is not None and url != row.url:
        urls.check_param(url, settings.security.allow_private_urls)
        row.url, changed = url, True
    if name is not None and name != row.name:
        row.name, changed = name, True
    if changed:  # the SDK: unchanged updates do not advance updated_at
        row.updated_at = utcnow()
    session.flush()
    return row


def delete_endpoint(session: Session, org_id: str, endpoint_id: str) -> str:
    """Its pending deliveries go with it (the delivery rows cascade)."""
    row = get_endpoint(session, org_id, endpoint_id)
    session.delete(row)
    session.flush()
    return endpoint_id


def rotate_secret(
    session: Session, org_id: str, endpoint_id: str, keep_old_for_24h: bool
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing too (a second signature) for 24 h if asked,
    so receivers can switch over without dropping a delivery."""
    row = get_endpoint(session, org_id, endpoint_id)
    now = utcnow()
    row.previous_secret = row.secret if keep_old_for_24h else None
    row.previous_secret_expires_at = now + ROTATION_GRACE if keep_old_for_24h else None
    row.secret = signing.new_secret()
    row.updated_at = now
    session.flush()
    return row


def signing_secrets(row: WebhookEndpoint) -> list[str]:
    """The current secret, and the rotated-out one while its grace lasts."""
    found = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > utcnow():
        found.append(row.previous_secret)
    return found


def list_deliveries(
    session: Session, org_id: str, endpoint_id: str, after: str | None, limit: int
) -> tuple[list[WebhookDelivery], bool]:
    """The endpoint's delivery log, newest first."""
    get_endpoint(session, org_id, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    cursor = None
    if after:
        cursor = session.scalar(query.where(WebhookDelivery.id == after))
        if cursor is None:
            raise NotFound(f"No such delivery: {after}", param="after")
    return page(session, query, WebhookDelivery, cursor, limit, desc=True)
