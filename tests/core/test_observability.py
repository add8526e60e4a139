"""The worker's Prometheus exporter (core.observability)."""

from __future__ import annotations


def test_worker_metrics_exporter_serves_and_survives_a_taken_port():
    import socket

    import httpx

    from core.observability import STEPS, serve_worker_metrics
    from core.settings import Settings
    from tests.utils.processes import free_port

    assert serve_worker_metrics(Settings()) is None  # off unless a port is set
    port = free_port()
    assert serve_worker_metrics(Settings(metrics={"worker_port": port})) == port
    STEPS.inc()
    assert "lathe_worker_steps_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert serve_worker_metrics(Settings(metrics={"worker_port": busy})) is None
