"""The production config YAML in S3: read, validate, archive the previous one, write.

The config is validated twice before it is written, against the committed JSON Schema
(what other tools read) and against the pydantic model (what the bot reads back), so a
config the bot could not read again never reaches S3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.adapters.aws.artifacts import object_version
from bot.adapters.aws.clients import client, error_code
from bot.adapters.aws.ssm import timestamp
from bot.core.production_config import ProductionConfig, to_yaml
from bot.core.schemas import generate
from bot.errors import BotError
from bot.settings import Target

SCHEMA_NAME = "production-config.schema.json"


@dataclass(frozen=True)
class ConfigWrite:
    """Where the config now is and where the one it replaced was archived."""

    uri: str
    version: str | None  # S3 VersionId when the bucket is versioned, else the ETag
    archive_uri: str | None  # None when there was no previous config or nothing changed
    changed: bool


def _s3(t: Target) -> Any:
    return client("s3", t.region)




def _get(t: Target) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        got: dict[str, Any] = _s3(t).get_object(Bucket=t.config_bucket, Key=t.config_key)
    except ClientError as error:
        code = error_code(error)
        if code in ("NoSuchKey", "404"):
            return None
        if code == "NoSuchBucket":
            raise BotError(f"{t.config_uri}: bucket {t.config_bucket} does not exist") from None
        raise
    return got


def parse(text: str, uri: str) -> ProductionConfig:
    """A config document as the bot reads it; a clear error naming ``uri`` otherwise."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BotError(f"{uri}: not valid YAML: {error}") from None
    try:
        return ProductionConfig.model_validate(document)
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
            for e in error.errors()
        )
        raise BotError(f"{uri}: not a valid production config: {reasons}") from None


def read(t: Target) -> ProductionConfig | None:
    """The live production config of ``t``; None when there is none yet."""
    return read_versioned(t)[0]


def read_versioned(t: Target) -> tuple[ProductionConfig | None, str | None]:
    """The live production config of ``t`` and the version read (S3 VersionId, else ETag);
    (None, None) when there is none yet."""
    got = _get(t)
    if got is None:
        return None, None
    config = parse(got["Body"].read().decode("utf-8", errors="replace"), t.config_uri)
    return config, object_version(got)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema generated from the model (``schemas/`` holds the same; a test checks)."""
    return generate()[SCHEMA_NAME]


def validate(config: ProductionConfig, uri: str) -> str:
    """The YAML to write, after checking it against the JSON Schema and the model."""
    import jsonschema

    text = to_yaml(config)
    document = yaml.safe_load(text)
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(document)'}: {e.message}"
            for e in errors
        )
        raise BotError(f"{uri}: refusing to write a config that breaks {SCHEMA_NAME}: {reasons}")
    if parse(text, uri) != config:
        raise BotError(f"{uri}: the config would not read back as written")
    return text


def _free_archive_key(t: Target, now: dt.datetime) -> str:
    from botocore.exceptions import ClientError

    s3 = _s3(t)
    moment = now
    while True:
        key = f"{t.config_archive_prefix}{timestamp(moment)}-{Path(t.config_key).name}"
        try:
            s3.head_object(Bucket=t.config_bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return key
            raise
        # An archive from the same microsecond exists: never overwrite it.
        moment += dt.timedelta(microseconds=1)


def write(t: Target, config: ProductionConfig, now: dt.datetime | None = None,
          before_write: Callable[[], None] | None = None) -> ConfigWrite:
    """Validate ``config``, archive the live one with a timestamp, then write ``config``.

    Writing what is already there changes nothing (no archive, no new version).
    ``before_write`` runs once a write is needed, before it (apply's lock check).
    """
    text = validate(config, t.config_uri)
    body = text.encode("utf-8")
    current = _get(t)
    if current is not None and current["Body"].read() == body:
        return ConfigWrite(t.config_uri, object_version(current), None, changed=False)
    if before_write is not None:
        before_write()
    s3 = _s3(t)
    archive_uri = None
    if current is not None:
        key = _free_archive_key(t, (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
        source: dict[str, str] = {"Bucket": t.config_bucket, "Key": t.config_key}
        version = current.get("VersionId")
        if version and version != "null":
            source["VersionId"] = version
        s3.copy_object(Bucket=t.config_bucket, Key=key, CopySource=source)
        archive_uri = f"s3://{t.config_bucket}/{key}"
    put = s3.put_object(Bucket=t.config_bucket, Key=t.config_key, Body=body,
                        ContentType="application/yaml")
    return ConfigWrite(t.config_uri, object_version(put), archive_uri, changed=True)
