"""/metrics as the operator chooses (docs/operations/security.md): on a listen address of its
own, which the API port then does not serve, and behind a bearer token."""

from __future__ import annotations

import httpx

from api.metrics_access import token_ok
from tests.utils.api_server import api_server
from tests.utils.processes import free_port


def test_metrics_on_their_own_address_behind_a_token(tmp_path):
    port = free_port()
    with api_server(tmp_path, metrics_listen=f"127.0.0.1:{port}", metrics_token="sc-rape") as s:
        assert httpx.get(f"{s.url}/models", headers=s.headers()).status_code == 200
        on_api = httpx.get(f"{s.base}/metrics")
        assert on_api.status_code == 404 and str(port) in on_api.json()["error"]["message"]
        apart = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(apart).status_code == 401
        assert httpx.get(apart, headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = httpx.get(apart, headers={"Authorization": "Bearer sc-rape"})
        assert scraped.status_code == 200
        assert (
            'lathe_http_requests_total{method="GET",route="/v1/models",status="200"}'
            in scraped.text
        )


def test_the_token_check():
    assert token_ok(None, None) and token_ok("Bearer x", None)
    assert token_ok("Bearer t0k", "t0k") and token_ok("bearer t0k", "t0k")
    assert not token_ok(None, "t0k") and not token_ok("Bearer t0", "t0k")
    assert not token_ok("Basic t0k", "t0k")
