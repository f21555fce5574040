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

import jsonschema
import yaml
from pydantic import ValidationError

from bot.adapters.aws import s3
from bot.adapters.aws.s3 import object_version
from bot.adapters.aws.ssm import timestamp
from bot.core.production_config import ProductionConfig, to_yaml
from bot.core.schemas import generate
from bot.errors import BotError, validation_reasons
from bot.settings import Target

SCHEMA_NAME = "production-config.schema.json"


@dataclass(frozen=True)
class ConfigWrite:
    """Where the config now is and where the one it replaced was archived."""

    uri: str
    version: str | None  # S3 VersionId when the bucket is versioned, else the ETag
    archive_uri: str | None  # None when there was no previous config or nothing changed
    changed: bool


def _get(t: Target) -> dict[str, Any] | None:
    try:
        return s3.get_object(t.config_bucket, t.config_key, t.region)
    except s3.NoSuchBucket:
        raise BotError(f"{t.config_uri}: bucket {t.config_bucket} does not exist") from None


def parse(text: str, uri: str) -> ProductionConfig:
    """A config document as the bot reads it; a clear error naming ``uri`` otherwise."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BotError(f"{uri}: not valid YAML: {error}") from None
    try:
        return ProductionConfig.model_validate(document)
    except ValidationError as error:
        reasons = validation_reasons(error.errors(), "(document)")
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


def read_archive(t: Target, key: str) -> ProductionConfig | None:
    """The config archived under ``key`` in the config bucket; None when there is none."""
    body = s3.get(t.config_bucket, key, t.region)
    return None if body is None else parse(body.decode("utf-8", errors="replace"),
                                           s3.uri(t.config_bucket, key))


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema generated from the model (``schemas/`` holds the same; a test checks)."""
    return generate()[SCHEMA_NAME]


def validate(config: ProductionConfig, uri: str) -> str:
    """The YAML to write, after checking it against the JSON Schema and the model."""
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
    moment = now
    while True:
        key = f"{t.config_archive_prefix}{timestamp(moment)}-{Path(t.config_key).name}"
        if not s3.exists(t.config_bucket, key, t.region):
            return key
        # An archive from the same microsecond exists: never overwrite it.
        moment += dt.timedelta(microseconds=1)


def write(t: Target, config: ProductionConfig, now: dt.datetime | None = None,
          before_write: Callable[[], None] | None = None,
          archive_key: str | None = None) -> ConfigWrite:
    """Validate ``config``, archive the live one, then write ``config``.

    Writing what is already there changes nothing (no archive, no new version).
    ``before_write`` runs once a write is needed, before it (apply's lock check).
    ``archive_key`` names the archive (apply's: from the apply, ``bot.core.names``): an
    archive already there under that name is this write's own earlier copy (a resumed or
    retried write), so the config is archived exactly once. Without it, the archive is
    named by the time ``now`` and never overwrites another.
    """
    text = validate(config, t.config_uri)
    body = text.encode("utf-8")
    current = _get(t)
    if current is not None and current["Body"].read() == body:
        return ConfigWrite(t.config_uri, object_version(current), None, changed=False)
    if before_write is not None:
        before_write()
    archive_uri = None
    if current is not None:
        if archive_key is None:
            key = _free_archive_key(t, (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
        else:
            key = archive_key
        if archive_key is None or not s3.exists(t.config_bucket, key, t.region):
            s3.copy(t.config_bucket, t.config_key, key, t.region, current.get("VersionId"))
        archive_uri = s3.uri(t.config_bucket, key)
    put = s3.put(t.config_bucket, t.config_key, body, t.region)
    assert put is not None  # unconditional
    return ConfigWrite(t.config_uri, object_version(put), archive_uri, changed=True)
