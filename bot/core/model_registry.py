"""The SageMaker Model Registry as a mirror of git (pure): what a planned model is registered
with, and which approval status each registered model should have.

Each target has one model package group, named after the target; each model the bot plans is
one model package (a version) in it, found again by the model's digest, which its
description names. A package starts ``PendingManualApproval`` (plan); apply sets
``Approved`` on the models production serves and ``Rejected``, with the reason, on a model
that leaves production. Statuses: ModelPackageSummary's ``ModelApprovalStatus``
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelPackageSummary.html).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bot.core.domain import Change, Evaluation, Plan

Status = Literal["PendingManualApproval", "Approved", "Rejected"]
PENDING: Status = "PendingManualApproval"
APPROVED: Status = "Approved"
REJECTED: Status = "Rejected"

#: The resource kind of the registry (``bot.flows.resources``) and of its changes.
KIND = "registry"

#: CustomerMetadataProperties: at most 50 entries, keys of 1-128 and values of 1-256
#: characters, letters, spaces, numbers and ``_.:/=+-@`` only
#: (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelPackage.html).
METADATA_ENTRIES = 50
METADATA_KEY_LENGTH = 128
METADATA_VALUE_LENGTH = 256
_METADATA_OUTSIDE = re.compile(r"[^\w\s.:/=+\-@]")
#: ModelPackageDescription and ApprovalDescription: at most 1024 characters
#: (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html).
DESCRIPTION_LENGTH = 1024
#: ClientToken (CreateModelPackage's idempotency token): 1-36 of ``[a-zA-Z0-9-]``
#: (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html).
CLIENT_TOKEN_LENGTH = 36

_DIGEST_IN_DESCRIPTION = re.compile(r"\bmodel sha256:([0-9a-f]{64})\b")


def group_name(target: str) -> str:
    """The model package group of a target: its name (a target name is already a valid
    group name: ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``)."""
    return target


def description(plan: Plan, digest: str) -> str:
    """The package's description: what it is, and the model digest it is found by."""
    text = f"{plan.experiment_id}: model sha256:{digest}, planned from {plan.request_path}"
    if len(text) <= DESCRIPTION_LENGTH:
        return text
    return f"model sha256:{digest}"


def digest_in(text: str | None) -> str | None:
    """The model digest a package's description names (None: not one of the bot's)."""
    found = _DIGEST_IN_DESCRIPTION.search(text or "")
    return found.group(1) if found else None


def client_token(target: str, digest: str) -> str:
    """CreateModelPackage's idempotency token for one model in one target's group: two plans
    registering the same model at once create one package."""
    return hashlib.sha256(f"{target}/{digest}".encode()).hexdigest()[:CLIENT_TOKEN_LENGTH]


def metadata_value(value: object) -> str:
    """``value`` as a CustomerMetadataProperties value: characters SageMaker refuses become
    ``_``, cut to the longest value allowed (never empty)."""
    text = _METADATA_OUTSIDE.sub("_", str(value))[:METADATA_VALUE_LENGTH]
    return text or "-"


def metadata(plan: Plan, *, pull_request: int | None, plan_digest: str) -> dict[str, str]:
    """What the package records of the plan that registered it: the pull request, its head
    commit, the data versions, the plan's digest and the request it was made from."""
    identity = plan.identity
    found: dict[str, object] = {
        "promotion-bot:target": plan.target,
        "promotion-bot:request": plan.request_path,
        "promotion-bot:experiment-id": plan.experiment_id,
        "promotion-bot:model-sha256": plan.model_sha256 or plan.artifact,
        "promotion-bot:model-key": plan.model_key,
        "promotion-bot:request-sha256": plan.content_sha256,
        "promotion-bot:plan-sha256": plan_digest,
        "promotion-bot:gates": "passed" if plan.passed else "failed",
    }
    if pull_request is not None:
        found["promotion-bot:pull-request"] = pull_request
    if identity is not None:
        found["promotion-bot:head"] = identity.head
        for name, version in sorted(identity.data_versions.items()):
            found[f"promotion-bot:data-version:{metadata_value(name)}"] = version
    for name, value in sorted(plan.metrics.items()):
        found[f"metric:{metadata_value(name)}"] = f"{value:.6g}"
    entries = list(found.items())[:METADATA_ENTRIES]
    return {key[:METADATA_KEY_LENGTH]: metadata_value(value) for key, value in entries}


#: The names SageMaker Model Monitor gives the bot's metrics in a model quality report
#: (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html).
_MONITOR_NAMES = {"accuracy": "accuracy", "precision": "precision", "recall": "recall",
                  "f1_score": "f1", "auc_roc": "auc", "pr_auc": "pr_auc"}


def model_quality(evaluation: Evaluation) -> bytes:
    """The model's test-set evaluation as a model quality statistics JSON, the format of
    SageMaker Model Monitor's ``binary_classification_metrics`` (which the Model Registry
    shows): the package's ``ModelMetrics.ModelQuality.Statistics``."""
    m = evaluation.confusion_matrix
    metrics: dict[str, Any] = {
        "confusion_matrix": {"0": {"0": m.tn, "1": m.fp}, "1": {"0": m.fn, "1": m.tp}},
    }
    for name, value in evaluation.metrics.items():
        metrics[_MONITOR_NAMES.get(name, name)] = {"value": value, "standard_deviation": "NaN"}
    metrics["accuracy_best_constant_classifier"] = {
        "value": evaluation.majority_accuracy, "standard_deviation": "NaN"}
    metrics["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": list(evaluation.roc.x),
        "true_positive_rates": list(evaluation.roc.y)}
    metrics["precision_recall_curve"] = {
        "recalls": list(evaluation.pr.x), "precisions": list(evaluation.pr.y)}
    body = {"version": 0.0, "dataset": {"item_count": evaluation.rows,
                                         "evaluation_time": None},
            "binary_classification_metrics": metrics}
    return json.dumps(body, sort_keys=True, indent=1).encode()


#: The name of the model quality statistics beside a stored plan (``plans/sha256/<plan>/``).
MODEL_QUALITY_FILE = "model-quality.json"


@dataclass(frozen=True)
class Registered:
    """One model package as the registry lists it."""

    digest: str  # the model's sha256
    arn: str
    version: int | None
    status: str  # PendingManualApproval, Approved or Rejected


@dataclass(frozen=True)
class Wanted:
    """The status a model should have, and why (the package's approval description)."""

    status: Status
    reason: str


def wanted(
    serving: Iterable[str], keep: Iterable[str], live_serving: Iterable[str],
    live: Mapping[str, Registered], approve_reason: str, reject_reason: str,
) -> dict[str, Wanted]:
    """The statuses merging makes true, by model digest.

    ``serving``: the models production serves afterwards (both variants); ``keep``: models
    that stay approved without serving (the previous champion, a rollback's target);
    ``live_serving``: the models on the endpoint now. Every registered model that serves is
    ``Approved``, except one rejected while it still serves (the watcher's brake took its
    traffic): only a new deployment approves it again. Every ``Approved`` model that no
    longer serves and is not kept is ``Rejected``. A model never deployed stays as it is
    (``PendingManualApproval``: proposed, not approved). The rule reads no history, so an
    interrupted apply computes the same statuses when it resumes.
    """
    serving_set, keep_set, on_endpoint = set(serving), set(keep), set(live_serving)
    found: dict[str, Wanted] = {}
    for digest, package in live.items():
        if digest in serving_set:
            if package.status != REJECTED or digest not in on_endpoint:
                found[digest] = Wanted(APPROVED, approve_reason)
        elif package.status == APPROVED and digest not in keep_set:
            found[digest] = Wanted(REJECTED, reject_reason)
    return found


def short(digest: str) -> str:
    """How a change names a model: its digest's first 12 hex digits."""
    return f"sha256:{digest[:12]}"


def changes(want: Mapping[str, Wanted] | None, live: Mapping[str, Registered]
            ) -> list[Change]:
    """From the registry now to ``want``: one change per model whose status changes."""
    if not want:
        return []
    return [Change(KIND, short(digest), live[digest].status, w.status)
            for digest, w in sorted(want.items())
            if digest in live and live[digest].status != w.status]


def cut(text: str, limit: int = DESCRIPTION_LENGTH) -> str:
    """``text`` within SageMaker's length limit for a description."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
