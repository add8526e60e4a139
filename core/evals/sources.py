"""An eval run's rows: read from its source, checked against the eval, turned into prompts.

Rows are checked when the run is created (the API) so a row that lacks a field a template
names, or breaks the eval's item_schema, is a 400 naming the row — not a run that fails
halfway on a worker. The worker reads the same rows again (a file_id source from storage).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from core.errors import InvalidRequest
from core.evals.criteria import Criterion, criteria_item_keys, reads_sample
from core.evals.spec import CompletionsDataSource, FileContentSource, TemplateInput
from core.graders.schema import safe_validator
from core.graders.templates import GraderError, item_keys, render

Rows = list[dict[str, Any]]
"""Each {"item": {...}, "sample": {...} | None}."""


def parse_jsonl(data: bytes, param: str, max_items: int) -> Rows:
    """A file_id source's rows: one {"item": {...}, "sample"?: {...}} object per line (a line
    that is a bare object is taken as the item, as OpenAI's uploads were)."""
    rows: Rows = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise InvalidRequest(f"line {number} is not JSON", param=param) from None
        if not isinstance(value, dict):
            raise InvalidRequest(f"line {number} is not a JSON object", param=param)
        if "item" not in value:
            value = {"item": value}
        if not isinstance(value.get("item"), dict) or not isinstance(
            value.get("sample") or {}, dict
        ):
            raise InvalidRequest(f"line {number}: item and sample must be objects", param=param)
        rows.append({"item": value["item"], "sample": value.get("sample")})
        if len(rows) > max_items:
            raise InvalidRequest(f"more than {max_items} rows (LATHE_EVAL_MAX_ITEMS)", param=param)
    if not rows:
        raise InvalidRequest("the file has no rows", param=param)
    return rows


def content_rows(source: FileContentSource) -> Rows:
    return [{"item": row.item, "sample": row.sample} for row in source.content]


def template_keys(data_source: CompletionsDataSource) -> list[tuple[str, str]]:
    """(item path, param) of each {{item.*}} the input_messages read."""
    messages = data_source.input_messages
    if messages is None:
        return []
    if not isinstance(messages, TemplateInput):
        return [(messages.item_reference[len("item.") :], "data_source.input_messages")]
    return [
        (key, f"data_source.input_messages.template[{i}].content")
        for i, message in enumerate(messages.template)
        for text in message.texts()
        for key in sorted(item_keys(text))
    ]


def check_schema_keys(item_schema: dict[str, Any], keys: list[tuple[str, str]]) -> None:
    """400 for a template naming an item field the eval's item_schema does not declare (when
    it declares its properties)."""
    properties = item_schema.get("properties")
    if not isinstance(properties, dict):
        return
    for key, param in keys:
        top = key.split(".")[0]
        if top not in properties:
            raise InvalidRequest(
                f"{{{{item.{key}}}}} names a field the eval's item_schema does not have "
                f"(its properties: {', '.join(sorted(properties)) or 'none'})",
                param=param,
            )


def row_checker(
    item_schema: dict[str, Any],
    criteria: list[Criterion],
    data_source: CompletionsDataSource | None,
) -> Callable[[int, dict[str, Any], str], None]:
    """check(index, row, param): 400 naming the row for one that breaks the item_schema,
    lacks a field a template reads, or (jsonl) lacks the sample the criteria grade."""
    validator = safe_validator(item_schema)
    keys = criteria_item_keys(criteria) + (template_keys(data_source) if data_source else [])
    needs_sample = data_source is None and reads_sample(criteria)

    def check(index: int, row: dict[str, Any], param: str) -> None:
        where = f"{param}[{index}]"
        try:
            error = next(iter(validator.iter_errors(row["item"])), None)
        except TimeoutError:
            error = "a pattern took too long"
        if error is not None:
            message = getattr(error, "message", error)
            raise InvalidRequest(f"row {index}: item breaks item_schema: {message}", param=where)
        for key, _ in keys:
            try:
                render(f"{{{{item.{key}}}}}", "", row["item"])
            except GraderError:
                raise InvalidRequest(
                    f"row {index} has no item.{key}, which a template reads", param=f"{where}.item"
                ) from None
        output = (row.get("sample") or {}).get("output_text")
        if needs_sample and not isinstance(output, str):
            raise InvalidRequest(
                f"row {index} has no sample.output_text for the testing criteria to grade "
                "(a jsonl data source brings its own samples)",
                param=f"{where}.sample",
            )

    return check


def prompt(data_source: CompletionsDataSource, item: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages sent to the model for one row."""
    messages = data_source.input_messages
    if isinstance(messages, TemplateInput):
        return [
            {
                "role": "system" if m.role == "developer" else m.role,
                "content": "".join(render(t, "", item) for t in m.texts()),
            }
            for m in messages.template
        ]
    value: Any = item
    for part in messages.item_reference.split(".")[1:]:  # type: ignore[union-attr]
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and isinstance(m.get("content"), str) for m in value
    ):
        raise GraderError(f"{messages.item_reference} is not a list of chat messages")  # type: ignore[union-attr]
    return [{"role": str(m.get("role", "user")), "content": m["content"]} for m in value]
