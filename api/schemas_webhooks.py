"""Wire schemas of webhook endpoints, as the `openai` SDK's `client.webhooks.*` types read
them, and of Lathe's delivery log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import ts
from core.persistence.webhook_models import WebhookDelivery, WebhookEndpoint
from core.webhooks import signing

NAME = Field(min_length=1, max_length=128, description="A human-readable name.")
URL = Field(min_length=1, max_length=2048, description="The http(s) URL deliveries go to.")
TYPES = Field(
    max_length=16,
    description="Event types that trigger deliveries: OpenAI's fine_tuning.job.succeeded, "
    ".failed, .cancelled; Lathe's fine_tuning.job.paused and "
    "fine_tuning.job.checkpoint.created.",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookEndpointCreate(_Strict):
    name: str = NAME
    url: str = URL
    event_types: list[str] = TYPES


class WebhookEndpointUpdate(_Strict):
    """Only the fields given change; `event_types` replaces the whole set."""

    name: str | None = Field(None, min_length=1, max_length=128)
    url: str | None = Field(None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(None, max_length=16)


class RotateSecret(_Strict):
    keep_old_secret_active_for_24_hours: bool = False


class WebhookTest(_Strict):
    event_type: str


class WebhookEndpointObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    created_at: int
    updated_at: int | None = None
    name: str
    url: str
    event_types: list[str]
    signing_secret_hint: str | None = None

    @classmethod
    def from_row(cls, row: WebhookEndpoint) -> WebhookEndpointObject:
        return cls(
            id=row.id,
            created_at=ts(row.created_at) or 0,
            updated_at=ts(row.updated_at),
            name=row.name,
            url=row.url,
            event_types=row.event_types,
            signing_secret_hint=signing.hint(row.secret),
        )


class WebhookEndpointWithSecret(WebhookEndpointObject):
    signing_secret: str = Field(description="Shown only by create and rotate_secret.")

    @classmethod
    def from_row(cls, row: WebhookEndpoint) -> WebhookEndpointWithSecret:
        base = WebhookEndpointObject.from_row(row).model_dump()
        return cls(**base, signing_secret=row.secret)


class DeletedWebhookEndpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool = True


class WebhookEndpointTestResult(BaseModel):
    object: Literal["webhook_endpoint.test"] = "webhook_endpoint.test"
    event_type: str
    status_code: int
    success: Literal[True] = True
    webhook_endpoint_id: str


class WebhookEventTypeList(BaseModel):
    object: Literal["list"] = "list"
    data: list[str]


class WebhookDeliveryObject(BaseModel):
    """Lathe: one event's delivery to one endpoint, with its last attempt's outcome."""

    id: str
    object: Literal["webhook_endpoint.delivery"] = "webhook_endpoint.delivery"
    webhook_endpoint_id: str
    event_id: str = Field(description="The `webhook-id` header every attempt repeats.")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    created_at: int
    last_attempt_at: int | None = None
    next_attempt_at: int | None = None
    delivered_at: int | None = None
    response_status_code: int | None = None
    response_body: str | None = Field(None, description="Its first bytes (bounded).")
    error: str | None = Field(None, description="Why the last attempt got no response.")
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: WebhookDelivery) -> WebhookDeliveryObject:
        return cls(
            id=row.id,
            webhook_endpoint_id=row.endpoint_id,
            event_id=row.event_id,
            event_type=row.event_type,
            status=row.status,
            attempts=row.attempts,
            created_at=ts(row.created_at) or 0,
            last_attempt_at=ts(row.last_attempt_at),
            next_attempt_at=ts(row.next_attempt_at),
            delivered_at=ts(row.delivered_at),
            response_status_code=row.response_status,
            response_body=row.response_body,
            error=row.error,
            payload=row.payload,
        )
