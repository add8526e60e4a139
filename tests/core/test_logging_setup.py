"""JSON log lines carry the fields bound for the job that is running, from any logger."""

from __future__ import annotations

import json
import logging

from core.logging_setup import JsonFormatter, TextFormatter, bind, set_fields


def _record(name: str = "celery.app", **extra) -> logging.LogRecord:
    record = logging.getLogger(name).makeRecord(
        name, logging.INFO, "f", 1, "hello %s", ("x",), None
    )
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_bound_fields_and_extras():
    with bind(job_id="ftjob-1", org_id="org-1"):
        with bind(stage="sft"):
            line = json.loads(JsonFormatter().format(_record(step=3, train_loss=0.5)))
        outer = json.loads(JsonFormatter().format(_record()))
    after = json.loads(JsonFormatter().format(_record()))
    assert line["message"] == "hello x" and line["logger"] == "celery.app"
    assert line["level"] == "INFO" and line["ts"].endswith("+00:00")
    assert (line["job_id"], line["org_id"], line["stage"]) == ("ftjob-1", "org-1", "sft")
    assert (line["step"], line["train_loss"]) == (3, 0.5)
    assert "stage" not in outer and outer["job_id"] == "ftjob-1"
    assert "job_id" not in after


def test_exceptions_and_text_format():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record()
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exc_info"]
    set_fields({"job_id": "ftjob-2"})
    try:
        text = TextFormatter("%(levelname)s:%(name)s:%(message)s").format(_record())
    finally:
        set_fields({})
    assert text == "INFO:celery.app:hello x job_id=ftjob-2"
