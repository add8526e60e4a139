"""Evals, runs and output items as OpenAI returned them (the SDK's EvalCreateResponse,
RunRetrieveResponse, OutputItemListResponse)."""

from __future__ import annotations

from typing import Any

from core.persistence.eval_models import Eval, EvalOutputItem, EvalRun

EMPTY_COUNTS = {"total": 0, "passed": 0, "failed": 0, "errored": 0}


def data_source_config(config: dict[str, Any]) -> dict[str, Any]:
    """custom → {type, schema}: the item (and, with include_sample_schema, sample) namespaces."""
    properties: dict[str, Any] = {"item": config["item_schema"]}
    required = ["item"]
    if config.get("include_sample_schema"):
        properties["sample"] = {
            "type": "object",
            "properties": {
                "model": {"type": "string"},
                "choices": {"type": "array"},
                "output_text": {"type": "string"},
            },
            "required": ["model", "choices"],
        }
        required.append("sample")
    schema = {"type": "object", "properties": properties, "required": required}
    return {"type": "custom", "schema": schema}


def eval_object(row: Eval) -> dict[str, Any]:
    return {
        "object": "eval",
        "id": row.id,
        "name": row.name,
        "created_at": int(row.created_at.timestamp()),
        "metadata": row.metadata_ or {},
        "data_source_config": data_source_config(row.data_source_config),
        "testing_criteria": row.testing_criteria,
    }


def run_object(row: EvalRun, base_url: str) -> dict[str, Any]:
    usage = [
        {"model_name": model, **counts} for model, counts in sorted(row.per_model_usage.items())
    ]
    criteria = [
        {"testing_criteria": name, **counts}
        for name, counts in row.per_testing_criteria_results.items()
    ]
    return {
        "object": "eval.run",
        "id": row.id,
        "eval_id": row.eval_id,
        "name": row.name,
        "model": row.model or "",
        "status": row.status,
        "created_at": int(row.created_at.timestamp()),
        "metadata": row.metadata_ or {},
        "data_source": row.data_source,
        "error": row.error or {"code": "", "message": ""},
        "result_counts": {**EMPTY_COUNTS, **row.result_counts},
        "per_testing_criteria_results": criteria,
        "per_model_usage": usage,
        "report_url": f"{base_url.rstrip('/')}/ui/evals/{row.eval_id}?run={row.id}",
    }


def item_object(row: EvalOutputItem) -> dict[str, Any]:
    return {
        "object": "eval.run.output_item",
        "id": row.id,
        "run_id": row.run_id,
        "eval_id": row.eval_id,
        "created_at": int(row.created_at.timestamp()),
        "status": row.status,
        "datasource_item_id": row.item_index,
        "datasource_item": row.datasource_item,
        "results": row.results,
        "sample": row.sample,
    }
