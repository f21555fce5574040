"""The SageMaker Model Registry: one model package group per target, one model package per
model the bot planned, with its approval status.

- ``register``: plan registers a model once, ``PendingManualApproval``, with its evaluation
  as model metrics and the plan's identity as metadata (CreateModelPackageGroup when the
  group is absent, CreateModelPackage with an idempotency token:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html);
- ``packages``: the group's packages by model digest (ListModelPackages:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html);
- ``set_status`` and ``reject``: apply, and the watcher's brake, set ``Approved`` or
  ``Rejected`` with the reason (UpdateModelPackage's ``ApprovalDescription``:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html).

The plan role may only create packages as ``PendingManualApproval`` (IAM condition key
``sagemaker:ModelApprovalStatus``); only the apply role changes a status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bot.adapters.aws.clients import client, error_code
from bot.adapters.aws.endpoint import model_name
from bot.adapters.aws.images import xgboost_image
from bot.core import model_registry as mr
from bot.core.domain import Plan
from bot.core.integrity import model_digest
from bot.core.model_registry import Registered
from bot.core.names import MANAGED_TAG
from bot.settings import Target


@dataclass(frozen=True)
class Package:
    """One model package as DescribeModelPackage shows it."""

    arn: str
    version: int | None
    status: str
    approval_description: str | None
    model_data_url: str | None
    metadata: dict[str, str]


def _sm(t: Target) -> Any:
    return client("sagemaker", t.region)


def _missing(error: Exception) -> bool:
    """SageMaker's answer for a group or package that does not exist (a ValidationException
    "... does not exist" / "... not found")."""
    text = str(error).lower()
    return error_code(error) in ("ValidationException", "ResourceNotFound") and (
        "does not exist" in text or "not found" in text)


def packages(t: Target) -> dict[str, Registered]:
    """The target's registered models by model digest (an absent group: none). A digest
    registered twice (by hand) counts by its first version."""
    found: dict[str, Registered] = {}
    try:
        pages = list(_sm(t).get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=mr.group_name(t.name), SortBy="CreationTime",
            SortOrder="Ascending"))
    except ClientError as error:
        if _missing(error):
            return {}
        raise
    for page in pages:
        for summary in page.get("ModelPackageSummaryList", []):
            digest = mr.digest_in(summary.get("ModelPackageDescription"))
            if digest is not None and digest not in found:
                found[digest] = Registered(
                    digest, summary["ModelPackageArn"], summary.get("ModelPackageVersion"),
                    str(summary.get("ModelApprovalStatus") or mr.PENDING))
    return found


def find(t: Target, model_artifact: str) -> Registered | None:
    """The package of the model ``model_artifact`` (a content-addressed model URI), if any."""
    digest = model_digest(model_artifact)
    return None if digest is None else packages(t).get(digest)


def describe(t: Target, arn: str) -> Package:
    """A package's status, approval description, model and metadata."""
    found = _sm(t).describe_model_package(ModelPackageName=arn)
    containers = (found.get("InferenceSpecification") or {}).get("Containers") or [{}]
    return Package(
        arn=found["ModelPackageArn"], version=found.get("ModelPackageVersion"),
        status=str(found.get("ModelApprovalStatus") or mr.PENDING),
        approval_description=found.get("ApprovalDescription"),
        model_data_url=containers[0].get("ModelDataUrl"),
        metadata=dict(found.get("CustomerMetadataProperties") or {}))


def serving_image(t: Target, model_data_urls: Iterable[str]) -> str:
    """The XGBoost image a registered model is served with: that of the endpoint's model for
    one of ``model_data_urls`` made with this container setting (its name hashes the
    container with the model, so it was made with the image ``xgboost_image`` gives), else
    looked up (which imports sagemaker-core's table: seconds a plan need not spend)."""
    sm = _sm(t)
    for url in model_data_urls:
        try:
            found = sm.describe_model(ModelName=model_name(t, url))
        except ClientError as error:
            if error_code(error) == "ValidationException":  # "Could not find model"
                continue
            raise
        image = (found.get("PrimaryContainer") or {}).get("Image")
        if image:
            return str(image)
    return xgboost_image(t)


def ensure_group(t: Target) -> str:
    """The target's model package group, created when absent; its ARN."""
    sm, name = _sm(t), mr.group_name(t.name)
    try:
        return str(sm.describe_model_package_group(
            ModelPackageGroupName=name)["ModelPackageGroupArn"])
    except ClientError as error:
        if not _missing(error):
            raise
    try:
        return str(sm.create_model_package_group(
            ModelPackageGroupName=name,
            ModelPackageGroupDescription=mr.cut(
                f"Models planned for {t.name} by promotion-bot: proposed by a pull request "
                "(PendingManualApproval), approved when apply deploys them, rejected when "
                "a revert or the watcher removes them"),
            Tags=[MANAGED_TAG])["ModelPackageGroupArn"])
    except ClientError:
        # Created meanwhile by another plan: the group is there now, or the error stands.
        return str(sm.describe_model_package_group(
            ModelPackageGroupName=name)["ModelPackageGroupArn"])


def register(t: Target, plan: Plan, *, image: Callable[[], str], pull_request: int | None,
             plan_digest: str, metrics_uri: str, metrics_sha256: str) -> Registered:
    """Register the plan's model once: its package, found by the model digest, or a new one
    ``PendingManualApproval`` in the target's group (created when absent) with the model
    quality statistics at ``metrics_uri`` as its model metrics and the plan's identity as
    metadata; ``image`` gives the serving container's image (asked only to create one). A
    re-plan of the same model finds it and changes nothing."""
    digest = plan.model_sha256
    if digest is None:
        raise ValueError(f"only a content-addressed model is registered, not {plan.artifact}")
    known = packages(t).get(digest)
    if known is not None:
        return known
    ensure_group(t)
    sm = _sm(t)
    arn = str(sm.create_model_package(
        ModelPackageGroupName=mr.group_name(t.name),
        ModelPackageDescription=mr.description(plan, digest),
        ModelApprovalStatus=mr.PENDING,
        InferenceSpecification={
            "Containers": [{"Image": image(), "ModelDataUrl": plan.artifact}],
            # What the XGBoost container takes and answers on the endpoint (text/csv).
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": metrics_uri,
            "ContentDigest": f"sha256:{metrics_sha256}"}}},
        CustomerMetadataProperties=mr.metadata(plan, pull_request=pull_request,
                                               plan_digest=plan_digest),
        ClientToken=mr.client_token(t.name, digest),
        Tags=[MANAGED_TAG],
    )["ModelPackageArn"])
    described = describe(t, arn)
    return Registered(digest, arn, described.version, described.status)


def set_status(t: Target, arn: str, status: mr.Status, reason: str) -> None:
    """Set a package's approval status, with the reason as its approval description."""
    _sm(t).update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status,
                                ApprovalDescription=mr.cut(reason))


def reject(target: Target, model_artifact: str, reason: str) -> str | None:
    """Set ``Rejected``, with ``reason``, on the package whose model is ``model_artifact``
    (what the watcher's brake calls when it takes a challenger's traffic away); its ARN, or
    None when that model is not registered. A package rejected already keeps its first
    reason (a watcher that runs again changes nothing)."""
    found = find(target, model_artifact)
    if found is None:
        return None
    if found.status != mr.REJECTED:
        set_status(target, found.arn, mr.REJECTED, reason)
    return found.arn
