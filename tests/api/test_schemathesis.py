"""Schemathesis over every operation of /openapi.json, against a real uvicorn with a valid key:
its default checks (no 5xx, documented status codes, content types, headers and response
schemas, negative data rejected, auth not ignored, Allow headers, stateful links...) find
nothing. Bounded: a fixed number of examples per operation and a fixed seed, a couple of
minutes on a small machine; settings in tests/api/schemathesis.toml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.utils.api_server import api_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 10
SEED = 2


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_failures(tmp_path):
    with api_server(
        tmp_path, requests_per_minute="1000000", failed_auth_per_minute="1000000"
    ) as server:
        # the first download of a builtin base builds and zips it (tens of seconds on a busy
        # machine; tiny-llama-pretrained is even trained), past schemathesis' 10 s request
        # timeout; later ones are served from cache
        models = httpx.get(f"{server.url}/models", headers=server.headers()).json()["data"]
        for model in models:
            warm = f"{server.url}/models/{model['id']}/content"
            assert httpx.get(warm, headers=server.headers(), timeout=300).status_code in (
                200,
                400,
            )  # 400: not downloadable
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.base}/openapi.json",
                "--header",
                f"Authorization: Bearer {server.key}",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=540,
        )
        assert " 500 " not in server.proc.log.read_text()
    summary = run.stdout[run.stdout.rfind("SUMMARY") :]
    print(summary)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", summary)
    assert selected and len(set(selected.groups())) == 1, summary  # every operation, tested
