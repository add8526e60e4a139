"""Database and object-store outages answer 503 with Retry-After in OpenAI's envelope, never a
500, and the service recovers by itself once they are back. The test runs its own Postgres
cluster (initdb/pg_ctl on a free port) and its own S3 server (moto), and stops and restarts
them; the machine's shared services are never touched."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from tests.utils.api_server import api_server
from tests.utils.processes import free_port
from tests.utils.waiting import wait_for

ROW = json.dumps(
    {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
).encode()


class Postgres:
    """A throwaway cluster: `initdb` into a temporary directory, `pg_ctl` to stop and start."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl)")
        self.bin = Path(bins[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="lathe-pg-"))  # not under a 0700 pytest dir
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        data, log = str(self.root / "data"), str(self.root / "log")
        self._run("pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class S3:
    """moto's S3 server on a fixed port, so it can be stopped and started again there."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._make = lambda: ThreadedMotoServer(ip_address="127.0.0.1", port=self.port)
        self.server = self._make()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = self._make()
        self.server.start()
        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1").create_bucket(
            Bucket="outage"
        )

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def deps() -> Iterator[tuple[Postgres, S3]]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    pg, s3 = Postgres(), S3()
    try:
        yield pg, s3
    finally:
        pg.remove()
        s3.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, deps):
    pg, s3 = deps
    root = tmp_path_factory.mktemp("outage")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with api_server(
        root,
        pg.url,
        extra_env=env,
        storage_url="s3://outage/lathe",
        s3_endpoint_url=s3.url,
        db_pool_timeout_s="3",
    ) as s:
        yield s


def _assert_503(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.json()["error"]["type"] == "server_error"


def _until_ok(call, timeout: float = 30) -> float:
    """Seconds until `call()` answers 200."""
    t0 = time.monotonic()
    wait_for(lambda: call().status_code == 200, timeout, "recovery", interval=0.2)
    return time.monotonic() - t0


def _stored(s3: S3) -> list[str]:
    client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
    listing = client.list_objects_v2(Bucket="outage", Prefix="lathe/orgs/")
    return [o["Key"] for o in listing.get("Contents", [])]


def test_database_outage_is_503_and_recovers(server, deps):
    pg, _ = deps
    unused = server.new_key("fresh")  # never looked up: no cache entry
    with server.client() as client:
        assert client.get("/models").status_code == 200
        pg.stop()
        try:
            _assert_503(client.get("/models"))  # the route's query
            _assert_503(client.get("/fine_tuning/jobs"))
            upload = client.post(
                "/files", files={"file": ("d.jsonl", ROW)}, data={"purpose": "fine-tune"}
            )
            _assert_503(upload)
            assert _stored(deps[1]) == []  # the bytes stored before the row failed: removed
            with server.client(unused) as fresh:
                _assert_503(fresh.get("/models"))  # the key look-up itself
            assert httpx.get(f"{server.base}/health").status_code == 200  # the process lives
        finally:
            pg.start()
        recovery = _until_ok(lambda: client.get("/models"))
        print(f"\ndatabase back: the API answered 200 after {recovery:.2f}s")
        with server.client(unused) as fresh:
            assert fresh.get("/files").status_code == 200


def test_storage_outage_is_503_and_recovers(server, deps):
    _, s3 = deps
    with server.client() as client:
        upload = client.post(
            "/files", files={"file": ("d.jsonl", ROW)}, data={"purpose": "fine-tune"}
        )
        assert upload.status_code == 200, upload.text
        file_id = upload.json()["id"]
        s3.stop()
        try:
            _assert_503(
                client.post(
                    "/files", files={"file": ("d.jsonl", ROW)}, data={"purpose": "fine-tune"}
                )
            )
            _assert_503(client.get(f"/files/{file_id}/content"))  # not a truncated 200
            assert client.get(f"/files/{file_id}").status_code == 200  # the database is fine
        finally:
            s3.start()  # a fresh moto: empty bucket
        recovery = _until_ok(
            lambda: client.post(
                "/files", files={"file": ("d.jsonl", ROW)}, data={"purpose": "fine-tune"}
            )
        )
        print(f"\nstorage back: uploads answered 200 after {recovery:.2f}s")
