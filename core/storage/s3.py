"""Any S3-compatible store (AWS, MinIO, moto) through boto3."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.storage.base import CHUNK


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None, region: str):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        # upload_fileobj streams in multipart chunks; S3 makes the object visible only on
        # completion, and s3transfer aborts the multipart upload when a part fails. An abort
        # that fails too (the store is down) leaves an incomplete upload: the sweeper's
        # abort_stale_uploads removes it.
        self.client.upload_fileobj(stream, self.bucket, self._key(key))

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def iter_bytes(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.bucket, self._key(key), str(path))
        return path

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list_keys(self, prefix: str) -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        keys = [
            obj["Key"][strip:]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix) + "/")
            for obj in page.get("Contents", [])
        ]
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> None:
        """The object named `prefix` and everything under `prefix/` — as a directory would be:
        deleting `.../step-1` must not take `.../step-10` with it."""
        full = self._key(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            objects = [
                {"Key": o["Key"]}
                for o in page.get("Contents", [])
                if o["Key"] == full or o["Key"].startswith(full + "/")
            ]
            if objects:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})

    def list_entries(self, prefix: str) -> list[tuple[str, float]]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(
            (obj["Key"][strip:], obj["LastModified"].timestamp())
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix) + "/")
            for obj in page.get("Contents", [])
        )

    def abort_stale_uploads(self, older_than_s: float) -> int:
        cutoff, n = time.time() - older_than_s, 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() < cutoff:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    n += 1
        return n
