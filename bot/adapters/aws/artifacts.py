"""Models, plans and apply records stored by hash in S3, so what was reviewed is what deploys.

Layout under ``s3://<target>-models/promotion-bot/``: ``models/<model_key>/model.tar.gz``,
``plans/<content_sha256>/{plan.json,comment.md,*.png}`` and ``applies/<commit>.json``.
"""

from __future__ import annotations

import json
from typing import Any

from bot.adapters.aws.clients import client, error_code
from bot.errors import BotError
from bot.settings import Target

_CONTENT_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".gz": "application/gzip",
    ".yaml": "application/yaml",
}




def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key); a clear error for anything else."""
    if not uri.startswith("s3://"):
        raise BotError(f"{uri}: not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise BotError(f"{uri}: an s3:// URI needs a bucket and a key: s3://BUCKET/KEY")
    return bucket, key


def _prefix(t: Target) -> str:
    return f"{t.artifacts_prefix.strip('/')}/" if t.artifacts_prefix.strip("/") else ""


def _key(t: Target, *parts: str) -> str:
    return _prefix(t) + "/".join(parts)


def _get(bucket: str, key: str, region: str | None = None) -> bytes | None:
    from botocore.exceptions import ClientError

    try:
        body: bytes = client("s3", region).get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        if error_code(error) == "NoSuchBucket":
            raise BotError(f"s3://{bucket}: bucket does not exist") from None
        raise
    return body


def _put(bucket: str, key: str, data: bytes, region: str | None = None) -> str:
    suffix = key[key.rfind("."):] if "." in key else ""
    client("s3", region).put_object(
        Bucket=bucket, Key=key, Body=data,
        ContentType=_CONTENT_TYPES.get(suffix, "application/octet-stream"),
    )
    return f"s3://{bucket}/{key}"


def _json(data: bytes, uri: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as error:
        raise BotError(f"{uri}: not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise BotError(f"{uri}: expected a JSON object")
    return value


def model_uri(t: Target, model_key: str) -> str:
    return f"s3://{t.artifacts_bucket}/{_key(t, 'models', model_key, 'model.tar.gz')}"


def get_model(t: Target, model_key: str) -> bytes | None:
    return _get(t.artifacts_bucket, _key(t, "models", model_key, "model.tar.gz"), t.region)


def put_model(t: Target, model_key: str, data: bytes) -> str:
    return _put(t.artifacts_bucket, _key(t, "models", model_key, "model.tar.gz"), data, t.region)


def plan_prefix(t: Target, sha: str) -> str:
    """The S3 URI (no trailing slash) under which the plan of content ``sha`` is stored."""
    return f"s3://{t.artifacts_bucket}/{_key(t, 'plans', sha)}"


def get_plan(t: Target, sha: str) -> dict[str, Any] | None:
    """The stored plan.json of content ``sha``; None when that content was never planned."""
    key = _key(t, "plans", sha, "plan.json")
    data = _get(t.artifacts_bucket, key, t.region)
    return None if data is None else _json(data, f"s3://{t.artifacts_bucket}/{key}")


def put_plan(t: Target, sha: str, files: dict[str, bytes]) -> str:
    """Store a plan's files (plan.json last, so a plan is complete once it is visible)."""
    if "plan.json" not in files:
        raise ValueError("a stored plan needs plan.json")
    for name in sorted(files, key=lambda n: n == "plan.json"):
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"plan file name {name!r} must be a plain file name")
        _put(t.artifacts_bucket, _key(t, "plans", sha, name), files[name], t.region)
    return plan_prefix(t, sha)


def apply_record_uri(t: Target, commit: str) -> str:
    return f"s3://{t.artifacts_bucket}/{_key(t, 'applies', f'{commit}.json')}"


def put_apply_record(t: Target, commit: str, record: dict[str, Any]) -> str:
    """Store what apply did at ``commit`` (the audit trail ``history`` prints)."""
    data = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    return _put(t.artifacts_bucket, _key(t, "applies", f"{commit}.json"), data, t.region)


def get_apply_record(t: Target, commit: str) -> dict[str, Any] | None:
    key = _key(t, "applies", f"{commit}.json")
    data = _get(t.artifacts_bucket, key, t.region)
    return None if data is None else _json(data, f"s3://{t.artifacts_bucket}/{key}")


def apply_records(t: Target) -> list[dict[str, Any]]:
    """Every stored apply record of ``t``, in no particular order."""
    s3 = client("s3", t.region)
    prefix = _key(t, "applies", "")
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=t.artifacts_bucket, Prefix=prefix
    ):
        for item in page.get("Contents", []):
            data = _get(t.artifacts_bucket, item["Key"], t.region)
            if data is not None:
                records.append(_json(data, f"s3://{t.artifacts_bucket}/{item['Key']}"))
    return records


def exists(uri: str) -> bool:
    """Whether the object at ``uri`` exists."""
    from botocore.exceptions import ClientError

    bucket, key = split_uri(uri)
    try:
        client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def write_object(uri: str, data: bytes) -> str:
    """Store ``data`` at ``uri``."""
    bucket, key = split_uri(uri)
    return _put(bucket, key, data)


def read_object(uri: str) -> bytes:
    """The bytes at ``uri``; a clear error when the object is missing."""
    bucket, key = split_uri(uri)
    data = _get(bucket, key)
    if data is None:
        raise BotError(f"{uri}: no such object")
    return data
