"""Per-organization rate limits and quotas answer 429 with Retry-After in the envelope, and one
organization spending its budget leaves the others untouched. An embedded API of its own with
small limits (in-memory counters, as embedded deployments use)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.utils.api_server import api_server

RPM = 15
UPLOAD_BUDGET = 2000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    with api_server(
        root,
        requests_per_minute=str(RPM),
        max_queued_jobs_per_org="2",
        upload_bytes_per_day=str(UPLOAD_BUDGET),
        failed_auth_per_minute="5",
        auth_cache_ttl_s="30",
    ) as s:
        yield s


def _assert_429(r: httpx.Response, code: str = "rate_limit_exceeded") -> None:
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 86400
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", code)


def _dataset(size: int) -> bytes:
    """One valid chat row padded to exactly `size` bytes."""
    row = {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}
    pad = size - len(json.dumps(row)) - 1
    row["messages"][0]["content"] = "a" * pad
    data = (json.dumps(row) + "\n").encode()
    assert len(data) == size
    return data


def test_requests_per_minute_per_organization(server):
    noisy, quiet = server.new_key("noisy"), server.new_key("quiet")
    with server.client(noisy) as client:
        assert [client.get("/models").status_code for _ in range(RPM)] == [200] * RPM
        _assert_429(client.get("/models"))
        _assert_429(client.get("/files"))  # every route of the organization
    with server.client(quiet) as client:
        assert client.get("/models").status_code == 200


def test_queued_jobs_quota(server):
    with server.client(server.new_key("queuer")) as client:
        f = client.post(
            "/files", files={"file": ("d.jsonl", _dataset(200))}, data={"purpose": "fine-tune"}
        ).json()
        body = {"model": "tiny-llama", "training_file": f["id"]}
        jobs = [client.post("/fine_tuning/jobs", json=body) for _ in range(2)]
        assert [r.status_code for r in jobs] == [200, 200]
        third = client.post("/fine_tuning/jobs", json=body)
        _assert_429(third, "too_many_queued_jobs")
        assert "2" in third.json()["error"]["message"]
        cancel = client.post(f"/fine_tuning/jobs/{jobs[0].json()['id']}/cancel")
        assert cancel.json()["status"] == "cancelled"
        assert client.post("/fine_tuning/jobs", json=body).status_code == 200
        assert len(client.get("/fine_tuning/jobs").json()["data"]) == 3


def test_upload_bytes_per_day(server):
    def upload(client: httpx.Client, size: int) -> httpx.Response:
        files = {"file": ("d.jsonl", _dataset(size))}
        return client.post("/files", files=files, data={"purpose": "fine-tune"})

    with server.client(server.new_key("uploader")) as client:
        assert upload(client, 1200).status_code == 200
        _assert_429(upload(client, 1200))  # over what is left: refused, and not counted
        assert upload(client, 700).status_code == 200
        assert len(client.get("/files").json()["data"]) == 2
    with server.client(server.new_key("other-uploader")) as client:
        assert upload(client, 1200).status_code == 200


def test_failed_authentication_per_client_ip(server):
    """Last in this module: it blocks 127.0.0.1's wrong keys for the rest of the minute."""
    working, unused = server.new_key("neighbour"), server.new_key("newcomer")
    assert httpx.get(f"{server.url}/models", headers=server.headers(working)).status_code == 200
    wrong = [  # forwarded headers from a proxy the operator did not name: ignored
        httpx.get(
            f"{server.url}/models",
            headers={**server.headers(f"sk-lathe-wrong{i}"), "X-Forwarded-For": f"10.0.0.{i}"},
        )
        for i in range(6)
    ]
    assert [r.status_code for r in wrong[:5]] == [401] * 5
    _assert_429(wrong[5])
    assert "invalid API keys" in wrong[5].json()["error"]["message"]
    # only failing authentication is held up: valid keys of any organization from this
    # address (tenants behind one NAT or proxy) go on working, seen before or not
    assert httpx.get(f"{server.url}/models", headers=server.headers(working)).status_code == 200
    assert httpx.get(f"{server.url}/models", headers=server.headers(unused)).status_code == 200
    _assert_429(httpx.get(f"{server.url}/models", headers=server.headers("sk-lathe-wrong9")))
