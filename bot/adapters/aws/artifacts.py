"""Models, plans and apply records stored in S3, so what was reviewed is what deploys.

Layout under ``s3://<target>-models/promotion-bot/``:

- ``models/sha256/<sha256 of the bytes>/model.tar.gz``: content-addressed and written once
  (``If-None-Match: *``); an existing object is never overwritten, and whoever reads a model
  can check its bytes against its name (apply does, before deploying);
- ``models/keys/<model_key>.json``: which model was trained for a model key (what plan
  reuses instead of retraining), a statement signed with the plan-signing key;
- ``plans/...``: signed plans, written once (``bot.adapters.aws.plan_store``);
- ``applies/<commit>.json``: what apply did.
"""

from __future__ import annotations

import json
from typing import Any

from bot.adapters.aws.clients import client, error_code
from bot.core import integrity
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


def object_version(response: dict[str, Any]) -> str | None:
    """What identifies an S3 object's content: its VersionId when versioned, else its ETag."""
    version = response.get("VersionId")
    if version and version != "null":
        return str(version)
    etag = response.get("ETag")
    return str(etag).strip('"') if etag else None


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


def _put(bucket: str, key: str, data: bytes, region: str | None = None, *,
         once: bool = False) -> bool:
    """Write an object; with ``once``, only if none exists (False: one was there already)."""
    from botocore.exceptions import ClientError

    suffix = key[key.rfind("."):] if "." in key else ""
    condition = {"IfNoneMatch": "*"} if once else {}
    try:
        client("s3", region).put_object(
            Bucket=bucket, Key=key, Body=data,
            ContentType=_CONTENT_TYPES.get(suffix, "application/octet-stream"), **condition,
        )
    except ClientError as error:
        # 412: the object exists; 409: another writer is creating it at this moment.
        if once and error_code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True


def _json(data: bytes, uri: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as error:
        raise BotError(f"{uri}: not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise BotError(f"{uri}: expected a JSON object")
    return value


def model_uri(t: Target, data: bytes) -> str:
    """Where the model ``data`` is (or would be) stored: named by the sha256 of its bytes."""
    return f"s3://{t.artifacts_bucket}/{_model_key(t, integrity.sha256_hex(data))}"


def _model_key(t: Target, digest: str) -> str:
    return _key(t, "models", "sha256", digest, "model.tar.gz")


def _index_key(t: Target, model_key: str) -> str:
    return _key(t, "models", "keys", f"{model_key}.json")


def get_model(t: Target, model_key: str) -> bytes | None:
    """The model trained for ``model_key``, if a signed index names one whose bytes match;
    None otherwise (never trained, or the index or the bytes cannot be trusted: retrain)."""
    from bot.adapters.aws import signing

    key = _index_key(t, model_key)
    index = _get(t.artifacts_bucket, key, t.region)
    if index is None:
        return None
    try:
        statement = signing.verify(t, index, f"s3://{t.artifacts_bucket}/{key}")
    except signing.BadSignature:
        return None
    digest = statement.get("model_sha256")
    if (statement.get("kind") != integrity.MODEL or statement.get("target") != t.name
            or statement.get("model_key") != model_key or not isinstance(digest, str)):
        return None
    data = _get(t.artifacts_bucket, _model_key(t, digest), t.region)
    if data is None or integrity.sha256_hex(data) != digest:
        return None
    return data


def put_model(t: Target, model_key: str, data: bytes) -> str:
    """Store a trained model (once, by digest) and the signed index entry for ``model_key``."""
    from bot.adapters.aws import signing

    uri = store_model(t, data)
    statement = integrity.model_statement(target=t.name, model_key=model_key,
                                          model_sha256=integrity.sha256_hex(data), model_uri=uri)
    _put(t.artifacts_bucket, _index_key(t, model_key), signing.sign(t, statement).to_bytes(),
         t.region)
    return uri


def store_model(t: Target, data: bytes) -> str:
    """Write ``data`` under its digest unless it is there already; never overwrite.

    An object already under that name with other bytes was written by someone else than
    the bot: refused, naming both digests.
    """
    digest = integrity.sha256_hex(data)
    key = _model_key(t, digest)
    uri = f"s3://{t.artifacts_bucket}/{key}"
    if not _put(t.artifacts_bucket, key, data, t.region, once=True):
        verify_model(uri)
    return uri


def read_model(uri: str) -> bytes:
    """The model at ``uri``; when the URI names a digest, only if the bytes have it."""
    data = read_object(uri)
    expected = integrity.model_digest(uri)
    if expected is not None:
        found = integrity.sha256_hex(data)
        if found != expected:
            raise TamperedModel(uri, expected, found)
    return data


def verify_model(uri: str) -> str:
    """Recompute the sha256 of the model at ``uri`` and check it against the one its name
    records; return it. ``BotError`` for a URI that names no digest, ``TamperedModel`` for
    bytes that are not the reviewed ones."""
    if integrity.model_digest(uri) is None:
        raise BotError(f"{uri}: not a content-addressed model (models/sha256/<digest>/"
                       "model.tar.gz), so its bytes cannot be checked; re-run plan")
    return integrity.sha256_hex(read_model(uri))


class TamperedModel(BotError):
    """A stored model whose bytes are not the ones its name (and the signed plan) records."""

    def __init__(self, uri: str, expected: str, found: str) -> None:
        super().__init__(f"{uri}: the model's bytes have sha256 {found}, but the reviewed model "
                         f"has sha256 {expected}; it was replaced after review")
        self.uri, self.expected, self.found = uri, expected, found


def put_apply_record(t: Target, commit: str, record: dict[str, Any]) -> str:
    """Store what apply did at ``commit`` (the audit trail ``history`` prints)."""
    data = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    key = _key(t, "applies", f"{commit}.json")
    _put(t.artifacts_bucket, key, data, t.region)
    return f"s3://{t.artifacts_bucket}/{key}"


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
    _put(bucket, key, data)
    return uri


def read_object(uri: str) -> bytes:
    """The bytes at ``uri``; a clear error when the object is missing."""
    bucket, key = split_uri(uri)
    data = _get(bucket, key)
    if data is None:
        raise BotError(f"{uri}: no such object")
    return data
