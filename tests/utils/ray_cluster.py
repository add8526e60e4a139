"""A real Ray cluster on this host for tests and benchmarks: a head (GCS, raylet, dashboard —
the Job Submission API lives there) and a second node, each a raylet with one CPU, so a
2-rank gang with STRICT_SPREAD has one rank on each node. Its session files go to a private
temporary directory (RAY_TMPDIR), never the host's shared /tmp/ray, and shutting it down
ends only its own processes (no `ray stop`, which would end every Ray on the host)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

OBJECT_STORE_BYTES = 80 * 1024**2  # Ray's floor is 75 MiB; nothing large goes through it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalRay:
    cluster: Any
    address: str
    """The Job Submission API's address (LATHE_RAY_ADDRESS); `cluster.address` is the GCS's."""
    second: Any
    """The second node: a test may remove it (a lost host) and add it again."""

    def lose_second_node(self) -> None:
        self.cluster.remove_node(self.second, allow_graceful=False)

    def add_second_node(self) -> None:
        self.second = self.cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        self.cluster.wait_for_nodes()


@contextlib.contextmanager
def local_ray(nodes: int = 2, stop_wait_s: int = 20) -> Iterator[LocalRay]:
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="lray-", dir="/tmp")  # short: Ray's socket paths are long
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "RAY_JOB_STOP_WAIT_TIME_S")}
    os.environ["RAY_TMPDIR"] = tmp
    os.environ["RAY_JOB_STOP_WAIT_TIME_S"] = str(stop_wait_s)  # the job supervisor inherits it
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    port = _free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": True,  # the Job Submission API is served by the dashboard
            "dashboard_host": "127.0.0.1",
            "dashboard_port": port,
            "object_store_memory": OBJECT_STORE_BYTES,
        },
    )
    try:
        added = [
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
            for _ in range(nodes - 1)
        ]
        cluster.wait_for_nodes()
        second = added[0] if added else None
        yield LocalRay(cluster, f"http://127.0.0.1:{port}", second)
    finally:
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)  # Ray's session: logs, sockets, spilled objects
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
