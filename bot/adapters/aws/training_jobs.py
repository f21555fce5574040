"""SageMaker training jobs through boto3: create, describe, stop, find; the training
shards' objects (upload, list, hash). The algorithm's image: ``bot.adapters.aws.images``.

Every AWS refusal a user can cause (no permission, a role SageMaker cannot assume, a quota)
becomes one ``BotError`` line naming the job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.adapters.aws import s3
from bot.adapters.aws.clients import client, error_code
from bot.adapters.aws.s3 import split_uri
from bot.errors import BotError, first_line
from bot.settings import Target


def describe(t: Target, name: str) -> dict[str, Any] | None:
    """The job as DescribeTrainingJob shows it; None when no job has that name."""
    try:
        job: dict[str, Any] = client("sagemaker", t.region).describe_training_job(
            TrainingJobName=name)
    except ClientError as error:
        if error_code(error) == "ValidationException" and "Could not find" in str(error):
            return None
        raise _refused(f"training job {name}", error) from None
    return job


def create(t: Target, request: dict[str, Any]) -> bool:
    """Start the job; False when a job of that name exists already (another plan started it)."""
    name = request["TrainingJobName"]
    try:
        client("sagemaker", t.region).create_training_job(**request)
    except ClientError as error:
        if error_code(error) == "ResourceInUse":
            return False
        raise _refused(f"cannot start training job {name}", error) from None
    return True


def stop(t: Target, name: str) -> bool:
    """Ask SageMaker to stop the job; False when it had ended already."""
    try:
        client("sagemaker", t.region).stop_training_job(TrainingJobName=name)
    except ClientError as error:
        if error_code(error) == "ValidationException":
            return False  # no longer in progress
        raise _refused(f"cannot stop training job {name}", error) from None
    return True


def running(t: Target, name_prefix: str) -> list[dict[str, Any]]:
    """Jobs in progress whose name starts with ``name_prefix``, each with its tags."""
    sagemaker = client("sagemaker", t.region)
    found = []
    try:
        for page in sagemaker.get_paginator("list_training_jobs").paginate(
            NameContains=name_prefix, StatusEquals="InProgress"
        ):
            for job in page.get("TrainingJobSummaries", []):
                if not str(job["TrainingJobName"]).startswith(name_prefix):
                    continue
                tags = sagemaker.list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", [])
                found.append({**job, "Tags": {tag["Key"]: tag["Value"] for tag in tags}})
    except ClientError as error:
        raise _refused("cannot list training jobs", error) from None
    return found


def upload(path: Path, uri: str) -> None:
    """Upload a local file to ``s3://bucket/key`` (in parts, streamed from disk)."""
    bucket, key = s3.split_uri(uri)
    try:
        s3.upload(str(path), bucket, key)
    except (ClientError, BotoCoreError) as error:
        raise BotError(f"{uri}: cannot upload the training data: {first_line(error)}") from None
    except Exception as error:  # s3transfer wraps client errors in its own
        if type(error).__module__.startswith(("boto3", "s3transfer")):
            raise BotError(f"{uri}: cannot upload the training data: {first_line(error)}") \
                from None
        raise


@dataclass(frozen=True)
class StoredObject:
    """An S3 object as a listing shows it: what changes whenever anyone writes it."""

    etag: str
    size: int
    modified: dt.datetime
    #: Versions the key has had (delete markers included): in a versioned bucket, more than
    #: one means it was written again; an unversioned one always says 1.
    versions: int = 1


def list_objects(uri: str) -> dict[str, StoredObject]:
    """Every object under the prefix ``s3://bucket/prefix/``, by its name below the prefix
    (ListObjectVersions: a versioned bucket also tells how often each was written)."""
    bucket, prefix = split_uri(uri)
    latest: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    try:
        for page in client("s3").get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix):
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                name = str(item["Key"])[len(prefix):]
                counts[name] = counts.get(name, 0) + 1
                if item.get("IsLatest", True):
                    latest[name] = item
    except (ClientError, BotoCoreError) as error:
        raise BotError(f"{uri}: cannot list the training data: {first_line(error)}") from None
    return {name: StoredObject(str(item["ETag"]).strip('"'), int(item["Size"]),
                               item["LastModified"], counts[name])
            for name, item in latest.items() if "ETag" in item}  # not a delete marker


def sha256_of_object(uri: str, chunk: int = 8 * 2**20) -> tuple[str, int]:
    """The sha256 and size of the object at ``uri``, read as a stream (never whole)."""
    bucket, key = split_uri(uri)
    digest, size = hashlib.sha256(), 0
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        while block := body.read(chunk):
            digest.update(block)
            size += len(block)
    except (ClientError, BotoCoreError) as error:
        raise BotError(f"{uri}: cannot read the training data: {first_line(error)}") from None
    return digest.hexdigest(), size


def _refused(what: str, error: Exception) -> BotError:
    code = error_code(error)
    message = getattr(error, "response", {}).get("Error", {}).get("Message") or str(error)
    if code in ("AccessDeniedException", "AccessDenied"):
        return BotError(f"{what}: access denied ({first_line(Exception(message))}); see the "
                        "IAM section of docs/architecture.md")
    return BotError(f"{what}: {code or 'error'}: {first_line(Exception(message))}")
