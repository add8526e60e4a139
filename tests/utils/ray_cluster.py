"""A real Ray cluster on this host for tests and benchmarks: a head (GCS, raylet, dashboard —
the Job Submission API lives there) and a second node, each a raylet with one CPU, so a
2-rank gang with STRICT_SPREAD has one rank on each node. Each node is a host of its own to
Lathe: its own temp directory (LATHE_TEMP_DIR) and model cache (LATHE_MODEL_CACHE_DIR; the
head's is given, the others' start empty), so a rank that used another node's local path
instead of fetching its own shows (`LocalRay.node_dirs`). Its session files go to a private
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
from pathlib import Path
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
    node_dirs: list[dict[str, Path]]
    """Each node's own directories: {"temp": its LATHE_TEMP_DIR, "models": its model cache}."""

    def lose_second_node(self) -> None:
        self.cluster.remove_node(self.second, allow_graceful=False)

    def add_second_node(self) -> None:
        self.second = self.cluster.add_node(**_node_args(self.node_dirs[1]))
        self.cluster.wait_for_nodes()


def _node_args(dirs: dict[str, Path]) -> dict[str, Any]:
    env = {"LATHE_TEMP_DIR": str(dirs["temp"]), "LATHE_MODEL_CACHE_DIR": str(dirs["models"])}
    return {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES, "env_vars": env}


@contextlib.contextmanager
def local_ray(
    nodes: int = 2, stop_wait_s: int = 20, head_models: Path | None = None
) -> Iterator[LocalRay]:
    """`head_models`: the head's model cache (the other nodes' start empty)."""
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="lray-", dir="/tmp")  # short: Ray's socket paths are long
    dirs = [{"temp": Path(tmp, f"n{i}", "tmp"), "models": Path(tmp, f"n{i}", "models")}
            for i in range(nodes)]  # fmt: skip
    dirs[0]["models"] = head_models or dirs[0]["models"]
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
            **_node_args(dirs[0]),
        },
    )
    try:
        added = [cluster.add_node(**_node_args(d)) for d in dirs[1:]]
        cluster.wait_for_nodes()
        second = added[0] if added else None
        yield LocalRay(cluster, f"http://127.0.0.1:{port}", second, dirs)
    finally:
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)  # Ray's session: logs, sockets, spilled objects
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
