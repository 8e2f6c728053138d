"""Blobs in an S3 bucket (``s3://bucket/prefix``): AWS, MinIO, any S3-compatible store.

``MEMHUB_S3_ENDPOINT_URL`` points at a non-AWS endpoint; credentials come from
the usual AWS sources (environment, profile, instance role). A successful
PutObject is durable in S3's own terms.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from memhub.errors import StorageUnavailable
from memhub.store.blobs.base import READ_PIECE, BlobInfo, BlobNotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _unavailable(action: str, exc: Exception) -> StorageUnavailable:
    return StorageUnavailable(
        f"S3 {action} failed: {exc}",
        hint="check the bucket, MEMHUB_S3_ENDPOINT_URL and the AWS credentials",
    )


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = url or f"s3://{bucket}/{self.prefix}"
        config = Config(
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            connect_timeout=5,
            read_timeout=60,
        )
        self._s3: S3Client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("PutObject", exc) from exc

    def _get_object(self, key: str) -> Any:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                raise BlobNotFound(key) from None
            raise _unavailable("GetObject", exc) from exc
        except BotoCoreError as exc:
            raise _unavailable("GetObject", exc) from exc

    def get(self, key: str) -> bytes:
        body = self._get_object(key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def open(self, key: str) -> Iterator[bytes]:
        body = self._get_object(key)["Body"]

        def pieces() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(READ_PIECE)
            finally:
                body.close()

        return pieces()

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                self.ping()  # a HEAD says 404 for a missing bucket too
                return False
            raise _unavailable("HeadObject", exc) from exc
        except BotoCoreError as exc:
            raise _unavailable("HeadObject", exc) from exc
        return True

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", []):
                    yield BlobInfo(
                        obj["Key"][strip:], int(obj["Size"]), obj["LastModified"].timestamp()
                    )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("ListObjectsV2", exc) from exc

    def delete(self, keys: Iterable[str]) -> None:
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(self._key(key))
            if len(batch) == 1000:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: builtins.list[str]) -> None:
        try:
            self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("DeleteObjects", exc) from exc

    def ping(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("HeadBucket", exc) from exc

    def close(self) -> None:
        self._s3.close()
