"""`lathe serve` prints its URL and key only once every part answers: the API's port and the
inference service (and, embedded, the worker: tests/api/test_embedded.py)."""

from __future__ import annotations

import socket
import subprocess
import time

import openai
import pytest
from openai import OpenAI

from tests.utils.processes import Proc, base_env, free_port, lathe, wait_http, wait_log


def test_the_banner_comes_when_the_api_answers(tmp_path, model_cache):
    port = free_port()
    env = base_env(LATHE_DATA_DIR=str(tmp_path / ".lathe"), LATHE_MODEL_CACHE_DIR=str(model_cache))
    proc = Proc(lathe("serve", "--port", str(port), "--no-worker"), env, tmp_path / "serve.log")
    try:
        deadline = time.monotonic() + 90
        while "Lathe API:" not in proc.log.read_text() and time.monotonic() < deadline:
            assert proc.popen.poll() is None, proc.tail()
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # refused if early
            pass
        log = proc.log.read_text()
        assert f"Lathe API: http://127.0.0.1:{port}/v1" in log
        assert f"API docs:  http://127.0.0.1:{port}/docs" in log
        key = (tmp_path / ".lathe" / "api_key").read_text().strip()
        assert f"API key:   {key}" in log and "Key file:" in log
        assert log.count("Lathe API:") == 1
    finally:
        proc.stop()


def test_chat_says_starting_until_the_inference_service_answers(tmp_path, model_cache):
    """Issue 26 item 2: while the inference service starts, chat is a 503 saying so (with
    Retry-After), never "overloaded"; the banner waits for it, and then chat answers."""
    port, inference_port = free_port(), free_port()
    env = base_env(
        LATHE_DATA_DIR=str(tmp_path / ".lathe"),
        LATHE_MODEL_CACHE_DIR=str(model_cache),
        LATHE_INFERENCE_URL=f"http://127.0.0.1:{inference_port}",  # not started yet
    )
    api = Proc(lathe("serve", "--port", str(port), "--no-worker"), env, tmp_path / "serve.log")
    inference = None
    try:
        wait_http(f"http://127.0.0.1:{port}/health", api)
        key = (tmp_path / ".lathe" / "api_key").read_text().strip()  # written before it listens
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        ask = dict(model="tiny-llama", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(**ask)
        assert refused.value.status_code == 503
        assert refused.value.body["code"] == "inference_starting", refused.value.body
        assert "starting" in refused.value.body["message"]
        assert int(refused.value.response.headers["retry-after"]) >= 1
        assert "Lathe API:" not in api.log.read_text()  # no banner while a part is down

        inference = Proc(
            lathe("inference", "--port", str(inference_port)), env, tmp_path / "inference.log"
        )
        wait_log(api, "Lathe API:")
        reply = client.chat.completions.create(**ask)  # the banner means it answers
        assert reply.choices[0].finish_reason in ("stop", "length")
    finally:
        api.stop()
        if inference:
            inference.stop()


def test_a_server_that_cannot_start_says_so_in_the_terminal(tmp_path, model_cache):
    """Its logs go to a file, so the terminal must still say why `lathe serve` stopped."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = base_env(
            LATHE_DATA_DIR=str(tmp_path / ".lathe"), LATHE_MODEL_CACHE_DIR=str(model_cache)
        )
        del env["LATHE_LOG_FILE"]  # the embedded default: a log file
        out = subprocess.run(
            lathe("serve", "--port", str(port), "--no-worker"),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert out.returncode != 0
    assert f"Lathe did not start; the end of {tmp_path / '.lathe' / 'lathe.log'}:" in out.stdout
    assert "address already in use" in out.stdout.lower(), out.stdout
    assert "Lathe API:" not in out.stdout
