"""The events Lathe sends: OpenAI's fine-tuning webhook events and Lathe's extensions.

Payloads are OpenAI's: `{"id": "evt_…", "object": "event", "created_at": …, "type": …,
"data": {"id": "ftjob-…"}}`. Lathe's extensions add fields to `data` (never remove any), so a
receiver written for OpenAI's events reads them unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from core.ids import new_id

SUCCEEDED = "fine_tuning.job.succeeded"
FAILED = "fine_tuning.job.failed"
CANCELLED = "fine_tuning.job.cancelled"
PAUSED = "fine_tuning.job.paused"  # Lathe
CHECKPOINT_CREATED = "fine_tuning.job.checkpoint.created"  # Lathe

OPENAI_TYPES = (SUCCEEDED, FAILED, CANCELLED)
LATHE_TYPES = (PAUSED, CHECKPOINT_CREATED)
EVENT_TYPES = OPENAI_TYPES + LATHE_TYPES

BY_STATUS = {"succeeded": SUCCEEDED, "failed": FAILED, "cancelled": CANCELLED, "paused": PAUSED}
"""The job status whose arrival each status event announces."""


def payload(event_type: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or new_id("evt_"),
        "object": "event",
        "created_at": int(time.time()),
        "type": event_type,
        "data": data,
    }


def sample_data(event_type: str) -> dict[str, Any]:
    """What a test delivery (`POST /v1/webhook_endpoints/{id}/test`) carries."""
    data: dict[str, Any] = {"id": "ftjob-test"}
    if event_type == CHECKPOINT_CREATED:
        data |= {
            "fine_tuning_checkpoint_id": "ftckpt_test",
            "fine_tuned_model_checkpoint": "ft:tiny-llama:org:test:ftjob-test:ckpt-step-1",
            "step_number": 1,
        }
    return data
