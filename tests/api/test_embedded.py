"""The embedded default, as a newcomer runs it: `lathe serve` alone (SQLite, a local object
directory, a worker on the filesystem broker), then the openai client flow."""

from __future__ import annotations

import re
import time

import pytest
from openai import OpenAI

from tests.utils.flows import train_capitals, wait_job
from tests.utils.processes import Proc, base_env, free_port, lathe, wait_http, wait_log

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    port = free_port()
    env = base_env(LATHE_DATA_DIR=str(root / ".lathe"))
    proc = Proc(lathe("serve", "--port", str(port)), env, root / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        wait_log(proc, "ready")  # the worker started alongside
        wait_log(proc, "API key:")  # the banner comes once the port accepts connections
        key = re.search(r"API key:\s+(sk-lathe-\S+)", proc.log.read_text()).group(1)
        yield OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0), root, proc
    finally:
        proc.stop()


def test_embedded_default_trains_and_serves(embedded, tmp_path):
    client, root, proc = embedded
    _, job = train_capitals(client, tmp_path)
    done, seen = wait_job(client, job.id)
    assert done.status == "succeeded", (done.error, proc.tail())
    assert done.fine_tuned_model.startswith("ft:tiny-llama:default:capitals:")
    reply = client.chat.completions.create(
        model=done.fine_tuned_model,
        temperature=0,
        messages=[{"role": "user", "content": "What is the capital of Japan?"}],
    )
    assert reply.choices[0].message.content == "Tokyo"
    assert (root / ".lathe" / "lathe.db").exists()
    stored = list(
        (root / ".lathe" / "objects").glob("orgs/*/models/*/artifact/adapter_model.safetensors")
    )
    assert len(stored) == 1
    assert {m.id for m in client.models.list().data} >= {"tiny-llama", done.fine_tuned_model}


def test_embedded_key_is_stable_across_restarts(embedded):
    _, root, proc = embedded
    key_file = root / ".lathe" / "api_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() in proc.log.read_text()


def test_a_dead_embedded_worker_is_started_again(embedded):
    import psutil

    _, _, proc = embedded
    server = psutil.Process(proc.popen.pid)
    [worker] = [c for c in server.children() if "worker" in " ".join(c.cmdline())]
    ready = proc.log.read_text().count(" ready.")
    worker.kill()  # as the OOM killer would
    psutil.wait_procs([worker], timeout=30)
    wait_log_count = 0
    for _ in range(240):
        wait_log_count = proc.log.read_text().count(" ready.")
        if wait_log_count > ready:
            break
        time.sleep(0.5)
    assert wait_log_count > ready, proc.tail()
    [again] = [c for c in server.children() if "worker" in " ".join(c.cmdline())]
    assert again.pid != worker.pid
    assert "embedded worker exited with -9; restarting it" in proc.log.read_text()


def test_worker_goes_when_the_server_goes(embedded):
    """Runs last: stopping `lathe serve` (SIGTERM to it alone, as a supervisor would) must not
    leave its worker behind."""
    import psutil

    _, _, proc = embedded
    server = psutil.Process(proc.popen.pid)
    workers = [c for c in server.children() if "worker" in " ".join(c.cmdline())]
    assert len(workers) == 1
    server.terminate()
    gone, alive = psutil.wait_procs([server, *workers], timeout=60)
    assert not alive, [p.cmdline() for p in alive]
