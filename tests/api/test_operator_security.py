"""The operator's security settings (docs/operations/security.md) on one real server: /metrics
on a listen address of its own (the API port then does not serve it) behind a bearer token,
and a trusted proxy whose X-Forwarded-For names the client the failed-auth limit counts."""

from __future__ import annotations

import httpx
import pytest

from api.metrics_access import token_ok
from tests.utils.api_server import api_server
from tests.utils.processes import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    with api_server(
        tmp_path_factory.mktemp("security"),
        metrics_listen=f"127.0.0.1:{port}",
        metrics_token="sc-rape",
        trusted_proxies='["127.0.0.1"]',
        failed_auth_per_minute="2",
    ) as s:
        yield s, port


def test_metrics_on_their_own_address_behind_a_token(server):
    s, port = server
    assert httpx.get(f"{s.url}/models", headers=s.headers()).status_code == 200
    on_api = httpx.get(f"{s.base}/metrics")
    assert on_api.status_code == 404 and str(port) in on_api.json()["error"]["message"]
    apart = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(apart).status_code == 401
    assert httpx.get(apart, headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = httpx.get(apart, headers={"Authorization": "Bearer sc-rape"})
    assert scraped.status_code == 200
    assert 'lathe_http_requests_total{method="GET",route="/v1/models",status="200"}' in scraped.text


def test_the_token_check():
    assert token_ok(None, None) and token_ok("Bearer x", None)
    assert token_ok("Bearer t0k", "t0k") and token_ok("bearer t0k", "t0k")
    assert not token_ok(None, "t0k") and not token_ok("Bearer t0", "t0k")
    assert not token_ok("Basic t0k", "t0k")


def test_a_trusted_proxy_names_the_client(server):
    """Behind a named proxy, each forwarded client has its own failed-auth budget."""
    s, _ = server

    def wrong(client_ip: str) -> int:
        headers = {**s.headers("sk-lathe-wrong"), "X-Forwarded-For": client_ip}
        return httpx.get(f"{s.url}/models", headers=headers).status_code

    assert [wrong("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert wrong("203.0.113.8") == 401  # another client behind the same proxy
