"""Object I/O in S3 for every adapter: get, put, put-once, head, list, copy, delete, versions.

One place says how S3's answers read: a missing object is ``None`` (never an error), a
missing bucket a clear ``BotError``, a conditional put that finds the object there
``False``. Where objects live (the key layout) is ``bot.core.names``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from bot.adapters.aws.clients import client, error_code
from bot.errors import BotError

#: What S3 answers for an object that is not there (GetObject says NoSuchKey, HeadObject 404).
MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
#: A conditional write that lost: 412 the condition failed, 409 another writer is creating it
#: (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})

_CONTENT_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".gz": "application/gzip",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}


class NoSuchBucket(BotError):
    """The bucket named does not exist."""

    def __init__(self, bucket: str) -> None:
        super().__init__(f"s3://{bucket}: bucket does not exist")
        self.bucket = bucket


def s3(region: str | None = None) -> Any:
    return client("s3", region)


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key); a clear error for anything else."""
    if not uri.startswith("s3://"):
        raise BotError(f"{uri}: not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise BotError(f"{uri}: an s3:// URI needs a bucket and a key: s3://BUCKET/KEY")
    return bucket, key


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def object_version(response: dict[str, Any]) -> str | None:
    """What identifies an S3 object's content: its VersionId when versioned, else its ETag."""
    version = response.get("VersionId")
    if version and version != "null":
        return str(version)
    etag = response.get("ETag")
    return str(etag).strip('"') if etag else None


def content_type(key: str) -> str:
    suffix = key[key.rfind("."):] if "." in key else ""
    return _CONTENT_TYPES.get(suffix, "application/octet-stream")


def get_object(bucket: str, key: str, region: str | None = None) -> dict[str, Any] | None:
    """GetObject's answer (body unread), or None when there is no such object."""
    try:
        got: dict[str, Any] = s3(region).get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error_code(error)
        if code in MISSING:
            return None
        if code == "NoSuchBucket":
            raise NoSuchBucket(bucket) from None
        raise
    return got


def get(bucket: str, key: str, region: str | None = None) -> bytes | None:
    """The object's bytes, or None when there is no such object."""
    got = get_object(bucket, key, region)
    return None if got is None else bytes(got["Body"].read())


def put(bucket: str, key: str, data: bytes, region: str | None = None, *,
        once: bool = False, if_match: str | None = None,
        content_type_: str | None = None) -> dict[str, Any] | None:
    """Write an object and return PutObject's answer.

    ``once``: only if no object is there (``If-None-Match: *``); ``if_match``: only if the
    object still has that ETag. Either condition failing returns None.
    """
    condition = {"IfNoneMatch": "*"} if once else {}
    if if_match is not None:
        condition["IfMatch"] = if_match
    try:
        answer: dict[str, Any] = s3(region).put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type_ or content_type(key),
            **condition)
    except ClientError as error:
        if condition and error_code(error) in CONFLICT:
            return None
        raise
    return answer


def put_once(bucket: str, key: str, data: bytes, region: str | None = None) -> bool:
    """Write an object unless one is there already; False when one was."""
    return put(bucket, key, data, region, once=True) is not None


def head(bucket: str, key: str, region: str | None = None) -> dict[str, Any] | None:
    """HeadObject's answer, or None when there is no such object."""
    try:
        found: dict[str, Any] = s3(region).head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in MISSING:
            return None
        raise
    return found


def exists(bucket: str, key: str, region: str | None = None) -> bool:
    return head(bucket, key, region) is not None


def keys(bucket: str, prefix: str, region: str | None = None) -> list[str]:
    """Every key under ``prefix``, in S3's (lexicographic) order."""
    pages = s3(region).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def copy(bucket: str, source_key: str, key: str, region: str | None = None,
         version: str | None = None) -> dict[str, Any]:
    """Copy an object (a given version of it) within ``bucket``."""
    source: dict[str, str] = {"Bucket": bucket, "Key": source_key}
    if version and version != "null":
        source["VersionId"] = version
    answer: dict[str, Any] = s3(region).copy_object(Bucket=bucket, Key=key, CopySource=source)
    return answer


def delete(bucket: str, key: str, region: str | None = None) -> None:
    """Delete an object; deleting one that is not there is done too (S3 answers 204)."""
    s3(region).delete_object(Bucket=bucket, Key=key)


def versions(bucket: str, key: str, region: str | None = None) -> list[dict[str, Any]]:
    """Every stored version of the object ``key`` (newest first, as S3 lists them)."""
    pages = s3(region).get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
    return [v for page in pages for v in page.get("Versions", []) if v["Key"] == key]


def read_uri(uri_: str) -> bytes:
    """The bytes at ``s3://bucket/key``; a clear error when the object is missing."""
    bucket, key = split_uri(uri_)
    data = get(bucket, key)
    if data is None:
        raise BotError(f"{uri_}: no such object")
    return data


def read_all(uris: dict[str, str]) -> dict[str, bytes]:
    """``read_uri`` of each of ``uris`` (by name), read concurrently."""
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(uris)))) as pool:
        return dict(zip(uris, pool.map(read_uri, uris.values()), strict=True))


def write_uri(uri_: str, data: bytes) -> str:
    """Store ``data`` at ``s3://bucket/key``."""
    bucket, key = split_uri(uri_)
    put(bucket, key, data)
    return uri_


def exists_uri(uri_: str) -> bool:
    """Whether the object at ``s3://bucket/key`` exists."""
    return exists(*split_uri(uri_))


def head_bucket(bucket: str, region: str | None = None) -> None:
    """Raises ClientError when the bucket is missing or not ours to use."""
    s3(region).head_bucket(Bucket=bucket)


def upload(path: str, bucket: str, key: str, region: str | None = None) -> None:
    """Upload a local file (in parts, streamed from disk)."""
    s3(region).upload_file(path, bucket, key)


def download(bucket: str, key: str, path: str, region: str | None = None,
             version_id: str | None = None) -> None:
    """Download an object (its version ``version_id``, else the current one) to a local file
    (in parts, streamed to disk)."""
    extra = {"VersionId": version_id} if version_id else None
    s3(region).download_file(bucket, key, path, ExtraArgs=extra)
