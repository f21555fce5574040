"""The SageMaker Model Registry mirrors git: plan registers each planned model once,
``PendingManualApproval``, in the target's group; apply approves what it deploys; a revert or
the watcher's brake rejects what leaves production, with the reason."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
import yaml
from conftest import a_plan, request_yaml

from bot.adapters.aws import artifacts, registry
from bot.core import model_registry as mr
from bot.core.domain import Plan, PlanIdentity
from bot.core.request import Request
from bot.settings import Target


def _plan(t: Target, experiment: str = "exp-xgboost-1") -> Plan:
    request = Request.model_validate(yaml.safe_load(request_yaml(experiment)))
    artifact = artifacts.put_model(t, "k" * 64, f"model of {experiment}".encode())
    return replace(a_plan(request, t.name, artifact=artifact), identity=PlanIdentity(
        head="a" * 40, data_versions={"train": "v1", "test": "sha-of/test"},
        champion_model_sha256=None, production_config_version=None, bot_version="0",
        signed_at="2026-12-04T10:00:00+00:00"))


def _register(t: Target, plan: Plan, pull_request: int | None = 7) -> mr.Registered:
    return registry.register(t, plan, image="xgboost:3.0-5", pull_request=pull_request,
                             plan_digest="d" * 64, metrics_uri="s3://b/plans/x/m.json",
                             metrics_sha256="e" * 64)


def test_a_model_is_registered_once_pending_with_its_plan_as_metadata(aws: Target) -> None:
    plan = _plan(aws)
    first = _register(aws, plan)
    again = _register(aws, plan, pull_request=8)

    assert again == first and first.status == "PendingManualApproval"
    sm = boto3.client("sagemaker", region_name=aws.region)
    listed = sm.list_model_packages(ModelPackageGroupName="fraud-detection")
    assert len(listed["ModelPackageSummaryList"]) == 1
    found = sm.describe_model_package(ModelPackageName=first.arn)
    assert found["ModelApprovalStatus"] == "PendingManualApproval"
    assert found["ModelPackageGroupName"] == "fraud-detection"
    assert found["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == plan.artifact
    assert found["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json", "S3Uri": "s3://b/plans/x/m.json",
        "ContentDigest": "sha256:" + "e" * 64}
    metadata = found["CustomerMetadataProperties"]
    assert metadata["promotion-bot:pull-request"] == "7"
    assert metadata["promotion-bot:head"] == "a" * 40
    assert metadata["promotion-bot:plan-sha256"] == "d" * 64
    assert metadata["promotion-bot:data-version:train"] == "v1"
    assert metadata["promotion-bot:data-version:test"] == "sha-of/test"
    assert metadata["promotion-bot:model-sha256"] == plan.model_sha256


def test_reject_sets_rejected_with_the_reason_and_keeps_the_metadata(aws: Target) -> None:
    plan = _plan(aws)
    arn = _register(aws, plan).arn

    assert registry.reject(aws, plan.artifact, "braked: fraud-detection-5xx in ALARM") == arn
    assert registry.reject(aws, plan.artifact, "a second run") == arn

    found = registry.describe(aws, arn)
    assert found.status == "Rejected"
    assert found.approval_description == "braked: fraud-detection-5xx in ALARM"
    assert found.metadata["promotion-bot:pull-request"] == "7"


def test_reject_of_a_model_never_registered_is_none(aws: Target) -> None:
    registered = _plan(aws, "exp-a")
    _register(aws, registered)
    other = artifacts.model_uri(aws, b"another model")

    assert registry.reject(aws, other, "why") is None
    assert registry.reject(aws, "s3://elsewhere/model.tar.gz", "why") is None
    assert registry.packages(aws)[registered.model_sha256].status == "PendingManualApproval"


def test_no_group_yet_means_nothing_registered(aws: Target) -> None:
    assert registry.packages(aws) == {}
    assert registry.reject(aws, artifacts.model_uri(aws, b"m"), "why") is None


def test_two_registrations_racing_create_one_package(aws: Target) -> None:
    """The idempotency token: a second create of the same model (its list came before the
    first create) answers with the first package, as SageMaker does."""
    plan = _plan(aws)
    first = _register(aws, plan)
    sm = boto3.client("sagemaker", region_name=aws.region)
    digest = plan.model_sha256
    again = sm.create_model_package(
        ModelPackageGroupName="fraud-detection", ModelApprovalStatus="PendingManualApproval",
        ModelPackageDescription=f"model sha256:{digest}",
        ClientToken=mr.client_token(aws.name, digest))
    assert again["ModelPackageArn"] == first.arn
    assert len(registry.packages(aws)) == 1


@pytest.mark.parametrize("value, expected", [
    ("pull/7#head", "pull/7_head"), ("", "-"), ("x" * 300, "x" * 256), ("a,b", "a_b")])
def test_metadata_values_keep_to_sagemakers_characters(value: str, expected: str) -> None:
    assert mr.metadata_value(value) == expected
