"""A job's error never shows where the service keeps things: endpoints, buckets, keys."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from core.retry import is_transient, retry
from core.runs.failures import scrub, unexpected_error
from core.settings import Settings

SETTINGS = Settings(
    storage={"url": "s3://secret-bucket/lathe", "s3_endpoint_url": "http://10.0.0.7:9000"}
)


def test_storage_outage_is_reported_without_the_endpoint():
    exc = EndpointConnectionError(endpoint_url="http://10.0.0.7:9000/secret-bucket/lathe/orgs/o/x")
    assert is_transient(exc)
    error = unexpected_error("ftjob-x", exc, SETTINGS)
    assert error["code"] == "storage_unavailable"
    assert "10.0.0.7" not in error["message"] and "secret-bucket" not in error["message"]


def test_storage_refusal_names_no_key():
    exc = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no access to orgs/o/models/j"}}, "PutObject"
    )
    assert not is_transient(exc)
    error = unexpected_error("ftjob-x", exc, SETTINGS)
    assert error == {
        "code": "storage_error",
        "message": "Object storage refused an operation (ClientError)",
        "param": None,
    }


def test_other_errors_are_a_code_and_a_sentence_with_the_detail_in_the_log(caplog):
    exc = FileNotFoundError(2, "No such file", "/tmp/lathe-ftjob-x/artifact/README.md")
    error = unexpected_error("ftjob-x", exc, SETTINGS)
    assert error["code"] == "internal_error" and "ftjob-x" in error["message"]
    assert "/tmp" not in error["message"] and "FileNotFoundError" not in error["message"]
    [record] = [r for r in caplog.records if "ftjob-x" in r.getMessage()]
    assert "README.md" in record.exc_text  # the detail, for the operator


def test_scrub_removes_where_the_service_keeps_things():
    message = scrub(
        "cannot read s3://secret-bucket/lathe/orgs/o/files/f at http://10.0.0.7:9000", SETTINGS
    )
    assert message.startswith("cannot read")
    assert "secret-bucket" not in message and "10.0.0.7" not in message and "orgs/" not in message


def test_retry_outlasts_a_transient_fault_and_not_a_permanent_one():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise EndpointConnectionError(endpoint_url="http://x")
        return "ok"

    assert retry(flaky, what="t", budget_s=10, first_delay_s=0.01) == "ok" and len(calls) == 3
    calls.clear()

    def broken() -> None:
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        retry(broken, what="t", budget_s=10, first_delay_s=0.01)
    assert len(calls) == 1
