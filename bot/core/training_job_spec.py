"""A SageMaker training job for a request (``training.backend: sagemaker``), as pure values.

The job runs SageMaker's built-in XGBoost algorithm (image ``sagemaker-xgboost``) on the
request's hyperparameters, its training data split into one Parquet object per instance
(label first, as the algorithm reads Parquet) and fed with ``ShardedByS3Key``.

Its name is derived from the model key, so every plan of the same model (a re-plan, a re-run
of a cancelled workflow, another pull request) finds the same job instead of starting
another. SageMaker never forgets a job name, so a job that ended without a model (failed or
stopped) is followed by ``-2``, ``-3``: at most ``MAX_ATTEMPTS`` per model.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from bot.core.names import MANAGED_TAG_KEY
from bot.core.request import Training

MAX_ATTEMPTS = 3
#: Tags on every job the bot starts; a superseded plan's job is found by them.
TAG_MANAGED = MANAGED_TAG_KEY
TAG_TARGET = "promotion-bot:target"
TAG_MODEL_KEY = "promotion-bot:model-key"
TAG_PULL_REQUEST = "promotion-bot:pull-request"
#: The value of a job's ``<TAG_PULL_REQUEST>-<n>`` tag: pull request n waits for the job, or
#: no longer does (it was closed, or its newer plan trains another model) but another one did.
WAITING, RELEASED = "planned", "released"
#: The channel's format: what the algorithm reads Parquet as (label in the first column).
PARQUET = "application/x-parquet"
RUNNING = ("InProgress", "Stopping")

#: On-demand price per instance-hour of SageMaker training in US East (N. Virginia), in USD,
#: from https://aws.amazon.com/sagemaker-ai/pricing/ (Training, On-Demand), read 2026-12.
#: Other regions and types: see that page; the plan then shows instance-hours only.
PRICES_US_EAST_1: dict[str, float] = {
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.m5.12xlarge": 2.765,
    "ml.m5.24xlarge": 5.53,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.c5.9xlarge": 1.836,
    "ml.c5.18xlarge": 3.672,
}


def job_name(target: str, model_key: str, attempt: int = 1) -> str:
    """``<target>-<model key[:24]>`` (``-<attempt>`` from the second): at most 63 characters,
    letters, digits and hyphens, as SageMaker requires."""
    safe = re.sub(r"[^A-Za-z0-9]+", "-", target).strip("-")[:30] or "model"
    base = f"{safe}-{model_key[:24]}"
    return base if attempt <= 1 else f"{base}-{attempt}"


def container_hyperparameters(hyperparameters: Mapping[str, str | int | float],
                              seed: int) -> dict[str, str]:
    """The request's hyperparameters as the algorithm takes them (strings), trained as a local
    model is: ``hist`` and the same seed."""
    values: dict[str, str | int | float] = {"tree_method": "hist", "seed": seed}
    values.update(hyperparameters)
    return {name: _text(value) for name, value in values.items()}


def _text(value: str | int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def job_request(
    *, name: str, image: str, role_arn: str, hyperparameters: dict[str, str], data_uri: str,
    output_uri: str, training: Training, tags: Mapping[str, str],
) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request: File mode, one Parquet channel ``train``."""
    sharded = training.instance_count > 1
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{
            "ChannelName": "train",
            "ContentType": PARQUET,
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": data_uri,
                "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
            }},
        }],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": training.instance_type,
                           "InstanceCount": training.instance_count,
                           "VolumeSizeInGB": training.volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_minutes * 60},
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def difference(job: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """The first way the job DescribeTrainingJob shows differs from the ``CreateTrainingJob``
    request ``wanted`` in what decides its model: image, hyperparameters, input channels
    (names, S3 URIs, distribution, format), instance type and count, output path. None when
    it does not differ.
    """
    def image(value: Mapping[str, Any]) -> object:
        return (value.get("AlgorithmSpecification") or {}).get("TrainingImage")

    def channels(value: Mapping[str, Any]) -> object:
        found = []
        for channel in value.get("InputDataConfig") or []:
            source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
            found.append((channel.get("ChannelName"), channel.get("ContentType"),
                          source.get("S3DataType"), source.get("S3Uri"),
                          source.get("S3DataDistributionType")))
        return found

    def resources(value: Mapping[str, Any]) -> object:
        found = value.get("ResourceConfig") or {}
        return (found.get("InstanceType"), found.get("InstanceCount"))

    def output(value: Mapping[str, Any]) -> object:
        return (value.get("OutputDataConfig") or {}).get("S3OutputPath")

    for what, of in (("image", image), ("input channels", channels),
                     ("instances", resources), ("output path", output)):
        if of(job) != of(wanted):
            return f"its {what}: {_shown(of(job))}, not {_shown(of(wanted))}"
    have, want = job.get("HyperParameters") or {}, wanted.get("HyperParameters") or {}
    if have != want:
        names = sorted(n for n in {*have, *want} if have.get(n) != want.get(n))
        return "its hyperparameters: " + ", ".join(
            f"{n} {have.get(n, '(not set)')}, not {want.get(n, '(not set)')}" for n in names[:5])
    return None


def _shown(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        return f"{value[1]} x {value[0]}"
    if isinstance(value, list):
        return ", ".join(f"{c[0]} {c[3]} ({c[4]})" for c in value) or "none"
    return str(value)


def elapsed_seconds(job: Mapping[str, Any], now: dt.datetime) -> float:
    """Seconds since the job was created (to its end, once it ended)."""
    start = job.get("CreationTime")
    end = job.get("TrainingEndTime") if job.get("TrainingJobStatus") not in RUNNING else None
    if not isinstance(start, dt.datetime):
        return 0.0
    return max(0.0, ((end if isinstance(end, dt.datetime) else now) - start).total_seconds())


def progress_line(job: Mapping[str, Any], now: dt.datetime) -> str:
    """``training on 4 x ml.m5.2xlarge, 12 min so far (Training)``: for the log and the PR."""
    resources = job.get("ResourceConfig") or {}
    minutes = elapsed_seconds(job, now) / 60
    so_far = f"{minutes:.0f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"
    stage = job.get("SecondaryStatus") or job.get("TrainingJobStatus") or "?"
    return (f"training on {resources.get('InstanceCount', '?')} x "
            f"{resources.get('InstanceType', '?')}, {so_far} so far ({stage}; "
            f"job {job.get('TrainingJobName', '?')})")


def cost_usd(instance_type: str, instance_count: int, billable_seconds: float) -> float | None:
    """What the job cost at the us-east-1 on-demand price; None for a type not in the table."""
    price = PRICES_US_EAST_1.get(instance_type)
    if price is None:
        return None
    return round(price * instance_count * billable_seconds / 3600, 4)


def summary(job: Mapping[str, Any], attached: bool, attempt: int) -> dict[str, Any]:
    """How the candidate was trained, for plan.json and the comment."""
    resources = job.get("ResourceConfig") or {}
    instance_type = str(resources.get("InstanceType", ""))
    count = int(resources.get("InstanceCount", 1))
    billable = float(job.get("BillableTimeInSeconds") or 0)
    return {
        "backend": "sagemaker",
        "job": job.get("TrainingJobName"),
        "attempt": attempt,
        "attached": attached,
        "instance_type": instance_type,
        "instance_count": count,
        "seconds": round(elapsed_seconds(job, dt.datetime.now(dt.UTC)), 1),
        "billable_seconds": billable,
        "instance_hours": round(billable * count / 3600, 4),
        "estimated_cost_usd": cost_usd(instance_type, count, billable),
    }


def failure(job: Mapping[str, Any]) -> str:
    """Why a job ended without a model, in one line."""
    status = job.get("TrainingJobStatus")
    secondary = job.get("SecondaryStatus")
    reason = str(job.get("FailureReason") or "").strip().splitlines()
    if secondary == "MaxRuntimeExceeded":
        limit = (job.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 0)
        return (f"stopped after its maximum runtime ({int(limit) // 60} min): raise "
                "training.max_runtime_minutes or use more or larger instances")
    if status == "Stopped":
        return "stopped (by a newer plan of the same pull request, or by hand)"
    return f"failed: {reason[0] if reason else secondary or 'no reason given'}"
