"""The production stack under fault injection: `lathe serve --no-worker` and two
`lathe worker`s as real processes, on a Postgres cluster of our own (to restart), the shared
Redis (a queue of our own) and moto behind a proxy that can cut storage off. Leases,
heartbeats, reconciling and sweeping are set short so each scenario recovers in seconds."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from openai import OpenAI

from tests.utils.faults import FlakyProxy, PgCluster
from tests.utils.processes import Proc, base_env, free_port, lathe, run_lathe, wait_http, wait_log

SETTINGS = {
    "LATHE_LEASE_HEARTBEAT_S": "0.5",
    "LATHE_LEASE_TIMEOUT_S": "5",
    "LATHE_RECONCILE_INTERVAL_S": "1",
    "LATHE_RECONCILE_AFTER_S": "30",
    "LATHE_CANCEL_GRACE_S": "1.5",
    "LATHE_STOP_GRACE_S": "30",
    "LATHE_RETRY_BUDGET_S": "60",
    "LATHE_SWEEP_INTERVAL_S": "2",
    "LATHE_SWEEP_AFTER_S": "3",
    "LATHE_FAULT_INJECTION": "true",  # lets a job's metadata hang a step (test e)
    "LATHE_DEVICE": "cpu",
    "LATHE_BATCH_SLICE": "4",  # a batch is many slices: a worker can die between and within
}


@dataclass
class FaultStack:
    url: str
    env: dict[str, str]
    key: str
    root: Path
    pg: PgCluster
    proxy: FlakyProxy
    bucket: str
    api: Proc
    workers: dict[str, Proc] = field(default_factory=dict)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def db(self) -> str:
        return self.env["LATHE_DATABASE_URL"]

    def client(self) -> OpenAI:
        return OpenAI(base_url=self.url, api_key=self.key, max_retries=3, timeout=60)

    def start_worker(self) -> str:
        name = f"fault-w{next(self._names)}@test"
        proc = Proc(lathe("worker", "--name", name), self.env, self.root / f"{name}.log")
        self.workers[name] = proc
        wait_log(proc, "ready", timeout=120)
        return name

    def ensure_workers(self, n: int = 2) -> None:
        for name, proc in list(self.workers.items()):
            if proc.popen.poll() is not None:
                proc.stop()
                del self.workers[name]
        while len(self.workers) < n:
            self.start_worker()

    def signal_worker(self, name: str, sig: int) -> None:
        os.kill(self.workers[name].popen.pid, sig)  # the worker alone, as docker or the OOM killer

    def storage(self):
        from core.settings import Settings
        from core.storage import get_storage

        return get_storage(
            Settings(
                storage={
                    "url": self.env["LATHE_STORAGE_URL"],
                    "s3_endpoint_url": self.proxy.endpoint,
                }
            )
        )


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory, redis_queue, s3_endpoint, model_cache) -> Iterator[FaultStack]:
    import boto3

    from tests.conftest import REDIS_URL
    from tests.utils.stack import base_models

    root: Path = tmp_path_factory.mktemp("faults")
    pg = PgCluster(Path(tempfile.mkdtemp(prefix="lathe-pgcluster-")))  # postgres must reach it
    proxy = FlakyProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    bucket = f"lathe-faults-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    tmp = root / "tmp"  # TMPDIR of every process: what they leave behind is ours to count
    tmp.mkdir()
    port, inference_port = free_port(), free_port()
    env = base_env(
        LATHE_DATABASE_URL=pg.url,
        LATHE_BROKER_URL=REDIS_URL,
        LATHE_QUEUE_NAME=redis_queue + "-faults",
        LATHE_STORAGE_URL=f"s3://{bucket}/lathe",
        LATHE_S3_ENDPOINT_URL=proxy.endpoint,
        LATHE_DATA_DIR=str(root / "data"),
        LATHE_MODEL_CACHE_DIR=str(model_cache),
        LATHE_EMBEDDED_WORKER="false",
        LATHE_INFERENCE_URL=f"http://127.0.0.1:{inference_port}",  # workers run batches on it
        LATHE_BASE_MODELS=json.dumps(base_models()),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        TMPDIR=str(tmp),
        OMP_NUM_THREADS="1",
        **SETTINGS,
    )
    api = inference = None
    stack = None
    try:
        run_lathe(env, "migrate")
        key = run_lathe(env, "keys", "create", "--org", "faults").strip()
        api = Proc(lathe("serve", "--no-worker", "--port", str(port)), env, root / "api.log")
        wait_http(f"http://127.0.0.1:{port}/health", api)
        inference = Proc(lathe("inference", "--port", str(inference_port)), env, root / "inf.log")
        wait_http(f"http://127.0.0.1:{inference_port}/health", inference)
        stack = FaultStack(f"http://127.0.0.1:{port}/v1", env, key, root, pg, proxy, bucket, api)
        stack.ensure_workers(2)
        yield stack
    finally:
        for proc in stack.workers.values() if stack else []:
            proc.stop()
        if api is not None:
            api.stop()
        if inference is not None:
            inference.stop()
        proxy.down()
        pg.destroy()
