"""`lathe serve` prints its URL and key only once the port accepts connections."""

from __future__ import annotations

import socket
import time

from tests.utils.processes import Proc, base_env, free_port, lathe


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
