"""`/v1/webhook_endpoints` and `/v1/webhook_event_types`, as the `openai` SDK's
`client.webhooks.*` calls them, plus Lathe's delivery log
(`GET /v1/webhook_endpoints/{id}/deliveries`). Deliveries themselves are sent by the API's
delivery loop (core.webhooks.delivery), never in a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import OrgDep, SessionDep, SettingsDep
from api.schemas import ListResponse
from api.schemas_webhooks import (
    DeletedWebhookEndpoint,
    RotateSecret,
    WebhookDeliveryObject,
    WebhookEndpointCreate,
    WebhookEndpointObject,
    WebhookEndpointTestResult,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookEventTypeList,
    WebhookTest,
)
from core.errors import InvalidRequest
from core.webhooks import endpoints, events
from core.webhooks.delivery import send_test

router = APIRouter(prefix="/v1", tags=["webhooks"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/webhook_event_types", name="listWebhookEventTypes")
def event_types(org: OrgDep) -> WebhookEventTypeList:
    return WebhookEventTypeList(data=list(events.EVENT_TYPES))


@router.post("/webhook_endpoints", name="createWebhookEndpoint")
def create(
    body: WebhookEndpointCreate, org: OrgDep, session: SessionDep, settings: SettingsDep
) -> WebhookEndpointWithSecret:
    """The signing secret is in this response only (and rotate_secret's)."""
    row = endpoints.create_endpoint(
        session, settings, org.id, body.name, body.url, body.event_types
    )
    session.commit()
    return WebhookEndpointWithSecret.from_row(row)


@router.get("/webhook_endpoints", name="listWebhookEndpoints")
def list_endpoints(
    org: OrgDep, session: SessionDep, after: str | None = None, limit: Limit = 20
) -> ListResponse[WebhookEndpointObject]:
    rows, more = endpoints.list_endpoints(session, org.id, after, limit)
    return ListResponse.of([WebhookEndpointObject.from_row(r) for r in rows], more)


@router.get("/webhook_endpoints/{webhook_endpoint_id}", name="retrieveWebhookEndpoint")
def retrieve(webhook_endpoint_id: str, org: OrgDep, session: SessionDep) -> WebhookEndpointObject:
    return WebhookEndpointObject.from_row(
        endpoints.get_endpoint(session, org.id, webhook_endpoint_id)
    )


@router.post("/webhook_endpoints/{webhook_endpoint_id}", name="updateWebhookEndpoint")
def update(
    webhook_endpoint_id: str,
    body: WebhookEndpointUpdate,
    org: OrgDep,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookEndpointObject:
    row = endpoints.update_endpoint(
        session,
        settings,
        org.id,
        webhook_endpoint_id,
        name=body.name,
        url=body.url,
        event_types=body.event_types,
    )
    session.commit()
    return WebhookEndpointObject.from_row(row)


@router.delete("/webhook_endpoints/{webhook_endpoint_id}", name="deleteWebhookEndpoint")
def delete(webhook_endpoint_id: str, org: OrgDep, session: SessionDep) -> DeletedWebhookEndpoint:
    """Its pending deliveries are dropped with it."""
    endpoints.delete_endpoint(session, org.id, webhook_endpoint_id)
    session.commit()
    return DeletedWebhookEndpoint(id=webhook_endpoint_id)


@router.post(
    "/webhook_endpoints/{webhook_endpoint_id}/rotate_secret", name="rotateWebhookEndpointSecret"
)
def rotate_secret(
    webhook_endpoint_id: str, org: OrgDep, session: SessionDep, body: RotateSecret | None = None
) -> WebhookEndpointWithSecret:
    keep = bool(body and body.keep_old_secret_active_for_24_hours)
    row = endpoints.rotate_secret(session, org.id, webhook_endpoint_id, keep)
    session.commit()
    return WebhookEndpointWithSecret.from_row(row)


@router.post("/webhook_endpoints/{webhook_endpoint_id}/test", name="testWebhookEndpoint")
def test(
    webhook_endpoint_id: str,
    body: WebhookTest,
    org: OrgDep,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookEndpointTestResult:
    """Send a sample event now, within LATHE_WEBHOOK_TIMEOUT_S; a receiver that cannot be
    reached is a 400 saying why (there is no status code to report)."""
    if body.event_type not in events.EVENT_TYPES:
        raise InvalidRequest(
            f"Lathe does not send {body.event_type!r} events",
            param="event_type",
            code="unsupported_event_type",
        )
    row = endpoints.get_endpoint(session, org.id, webhook_endpoint_id)
    session.expunge(row)
    session.close()  # hold no connection while waiting on the receiver
    attempt = send_test(settings, row, body.event_type)
    if attempt.status is None:
        raise InvalidRequest(
            f"The test delivery to {row.url} failed: {attempt.error}",
            param="url",
            code="webhook_unreachable",
        )
    return WebhookEndpointTestResult(
        event_type=body.event_type, status_code=attempt.status, webhook_endpoint_id=row.id
    )


@router.get(
    "/webhook_endpoints/{webhook_endpoint_id}/deliveries", name="listWebhookEndpointDeliveries"
)
def deliveries(
    webhook_endpoint_id: str,
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: Limit = 20,
) -> ListResponse[WebhookDeliveryObject]:
    """Lathe: the endpoint's delivery log, newest first."""
    rows, more = endpoints.list_deliveries(session, org.id, webhook_endpoint_id, after, limit)
    return ListResponse.of([WebhookDeliveryObject.from_row(r) for r in rows], more)
