"""The production config in S3 (9.1–9.3): validated, previous one archived, readable again."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
import yaml

from bot.adapters.aws import config_store
from bot.core.hyperparameters import Hyperparameters
from bot.core.production_config import ProductionConfig
from bot.errors import BotError
from bot.settings import Target

NOW = dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.UTC)


def config(experiment: str = "exp-1", eta: float = 0.1) -> ProductionConfig:
    return ProductionConfig(
        target="fraud-detection", algorithm="xgboost", experiment_id=experiment,
        hyperparameters=Hyperparameters.model_validate({
            "objective": "binary:logistic", "num_round": 100, "max_depth": 6, "eta": eta,
            "subsample": 0.8, "colsample_bytree": 0.8, "lambda": 1.0}),
        metrics={"accuracy": 0.999}, test_date="2024-01-15T10:00:00+00:00",
        approvers=["alice"], approval_source="github-reviews", commit="a" * 40,
        pull_request=12, content_sha256="b" * 64,
        model_artifact="s3://fraud-detection-models/promotion-bot/models/k/model.tar.gz",
    )


def keys(t: Target) -> list[str]:
    listed = boto3.client("s3", region_name=t.region).list_objects_v2(Bucket=t.config_bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_first_write_has_nothing_to_archive(aws: Target) -> None:
    assert config_store.read(aws) is None
    written = config_store.write(aws, config(), NOW)
    assert written.changed and written.archive_uri is None and written.version
    assert config_store.read(aws) == config()
    assert keys(aws) == ["production-model-config.yaml"]


def test_config_is_yaml_with_the_seeds_fields(aws: Target) -> None:
    config_store.write(aws, config(), NOW)
    body = boto3.client("s3").get_object(Bucket=aws.config_bucket, Key=aws.config_key)["Body"]
    document = yaml.safe_load(body.read())
    assert {"algorithm", "hyperparameters", "metrics", "test_date", "approvers"} <= set(document)
    assert document["hyperparameters"]["lambda"] == 1.0


def test_previous_config_is_archived_with_a_timestamp(aws: Target) -> None:
    config_store.write(aws, config("exp-1"), NOW)
    written = config_store.write(aws, config("exp-2", eta=0.2), NOW)
    archive = "archive/20240115T103000.000000Z-production-model-config.yaml"
    assert written.archive_uri == f"s3://fraud-detection-config/{archive}"
    assert keys(aws) == [archive, "production-model-config.yaml"]
    old = boto3.client("s3").get_object(Bucket=aws.config_bucket, Key=archive)["Body"].read()
    assert config_store.parse(old.decode(), "archive") == config("exp-1")
    assert config_store.read(aws) == config("exp-2", eta=0.2)


def test_same_moment_never_overwrites_an_archive(aws: Target) -> None:
    for n in range(3):
        config_store.write(aws, config(f"exp-{n}"), NOW)
    assert len([k for k in keys(aws) if k.startswith("archive/")]) == 2


def test_writing_what_is_live_changes_nothing(aws: Target) -> None:
    first = config_store.write(aws, config(), NOW)
    again = config_store.write(aws, config(), NOW)
    assert not again.changed and again.version == first.version and again.archive_uri is None
    assert keys(aws) == ["production-model-config.yaml"]


def test_unreadable_live_config_names_uri_and_reason(aws: Target) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=aws.config_bucket, Key=aws.config_key, Body=b"algorithm: [unclosed")
    with pytest.raises(BotError, match=r"s3://fraud-detection-config/production-model-config"
                                       r"\.yaml: not valid YAML"):
        config_store.read(aws)
    s3.put_object(Bucket=aws.config_bucket, Key=aws.config_key, Body=b"algorithm: xgboost\n")
    with pytest.raises(BotError, match="not a valid production config: target: Field required"):
        config_store.read(aws)


def test_schema_violation_is_refused_before_writing(aws: Target) -> None:
    broken = config().model_copy(update={"approvers": []})  # skips pydantic's own check
    with pytest.raises(BotError, match=r"production-config.schema.json: approvers: \[\] should "
                                       "be non-empty"):
        config_store.write(aws, broken, NOW)
    assert keys(aws) == []
