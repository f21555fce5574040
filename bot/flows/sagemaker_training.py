"""Train the candidate with a SageMaker training job: data shards, start or attach, wait, read.

1. The training data is written once per data version and instance count as Parquet shards,
   label first, one object per instance (``ShardedByS3Key``), streamed batch by batch, with
   a signed manifest of their sha256 that a later plan checks before reusing them
   (``bot.flows.training_data``).
2. The job's name comes from the model key (``bot.core.training_job_spec.job_name``): a re-plan or
   a re-run of a killed plan finds the running job and waits for it instead of starting
   another; a plan of a pull request stops that pull request's jobs for other model keys
   (its superseded plans), closing the pull request stops the jobs it alone waits for
   (``stop_jobs_of_pull_request``, run by ``promotion-bot stop-training``), and
   ``MaxRuntimeInSeconds`` bounds a job nobody waits for.
3. The model SageMaker writes is read back, given the training data's feature names and
   returned to the same evaluation as a locally trained one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.adapters.aws import s3
from bot.adapters.aws import training_jobs as jobs
from bot.adapters.aws.clients import client
from bot.adapters.aws.images import xgboost_image
from bot.core import names, training
from bot.core import training_job_spec as spec
from bot.core.request import Request
from bot.errors import BotError
from bot.flows.training_data import Shards, changed_since_checked, prepare_data
from bot.settings import Target

Progress = Callable[[str], None]
#: Seconds between DescribeTrainingJob calls: short at first, at most ``POLL_MAX``.
POLL_FIRST, POLL_MAX = 0.5, 30.0
#: Seconds between progress lines while nothing changes.
PROGRESS_EVERY = 60.0


class Superseded(BotError):
    """The plan's training job was stopped by a newer plan (or by hand): the newer plan owns
    the pull request's comment now."""


def train(t: Target, request: Request, repo_root: Path, model_key: str, progress: Progress,
          pull_request: int | None = None, train_version: str | None = None,
          ) -> tuple[Any, dict[str, Any]]:
    """The booster a training job trained for ``model_key``, and how it was trained."""
    shards = prepare_data(t, request, repo_root, progress, train_version)
    attempt, job, attached = start_or_attach(t, request, model_key, shards, progress,
                                             pull_request)
    job = wait(t, job, progress)
    name = job["TrainingJobName"]
    if job["TrainingJobStatus"] == "Stopped" and job.get("SecondaryStatus") == "Stopped":
        raise Superseded(f"training job {name} {spec.failure(job)}")
    if job["TrainingJobStatus"] != "Completed":
        raise BotError(f"training job {name} {spec.failure(job)}")
    changed = changed_since_checked(shards)
    if changed:
        raise BotError(f"training job {name}: {changed} while it trained, so its model is not "
                       "used; re-run plan to write the shards and train again")
    uri = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not uri:
        raise BotError(f"training job {name} completed without a model artifact")
    booster = training.name_features(training.load_model(s3.read_uri(uri)),
                                     shards.features)
    how = {**spec.summary(job, attached, attempt), "rows": shards.rows,
           "data": shards.data_uri, "data_manifest_sha256": shards.manifest_sha256}
    cost = how["estimated_cost_usd"]
    progress(f"training job {name} completed: {how['instance_count']} x {how['instance_type']}, "
             f"{how['billable_seconds']:.0f} billable s each"
             + (f", about ${cost:.4f}" if cost is not None else ""))
    return booster, how


def start_or_attach(
    t: Target, request: Request, model_key: str, shards: Shards, progress: Progress,
    pull_request: int | None,
) -> tuple[int, dict[str, Any], bool]:
    """The model key's job: attached to when it runs or completed, else started.

    A job of the expected name is attached to only if DescribeTrainingJob shows it as this
    plan would start it (image, hyperparameters, input channels, instances, output path)
    and it started after its training data was last written: anyone allowed to start
    training jobs could have started one under that name. Otherwise, as after a job that
    ended without a model, the next name (``-2``, ``-3``) is tried.

    Returns the attempt, the job (as DescribeTrainingJob shows it) and whether it was
    attached to rather than started by this plan.
    """
    last: tuple[str, str] | None = None  # the last job passed over, and why
    for attempt in range(1, spec.MAX_ATTEMPTS + 1):
        name = spec.job_name(t.name, model_key, attempt)
        wanted = _job_request(t, request, name, model_key, shards, pull_request)
        job = jobs.describe(t, name)
        if job is None:
            stop_superseded(t, model_key, pull_request, progress)
            created = jobs.create(t, wanted)
            job = jobs.describe(t, name)
            if job is None:
                raise BotError(f"training job {name} was started but cannot be found")
            if not created and (why := _not_this_plans(job, wanted, shards)) is not None:
                progress(f"not attaching to training job {name}, started meanwhile: {why}")
                last = (name, why)
                continue
            training = request.training
            progress(f"started training job {name}: {training.instance_count} x "
                     f"{training.instance_type}, at most {training.max_runtime_minutes} min"
                     if created else f"attaching to training job {name}, started meanwhile "
                     "by another plan")
            return attempt, job, not created
        why = _not_this_plans(job, wanted, shards)
        if why is not None:
            progress(f"not attaching to training job {name}: {why}")
            last = (name, why)
            continue
        status = job["TrainingJobStatus"]
        if status == "Stopping":
            job = wait(t, job, progress)
            status = job["TrainingJobStatus"]
        if status == "InProgress":
            progress(f"attaching to training job {name}, "
                     f"{spec.progress_line(job, _now()).removeprefix('training ')}")
            _note_pull_request(t, job, pull_request)
            stop_superseded(t, model_key, pull_request, progress)
            return attempt, job, True
        if status == "Completed":
            progress(f"training job {name} completed earlier; reading its model")
            return attempt, job, True
        last = (name, spec.failure(job))
        progress(f"training job {name} {spec.failure(job)}; trying again")
    assert last is not None
    raise BotError(
        f"{spec.MAX_ATTEMPTS} training jobs of this model could not give it (the last, "
        f"{last[0]}, {last[1]}); change the request or its data")


def _not_this_plans(job: dict[str, Any], wanted: dict[str, Any], shards: Shards) -> str | None:
    """Why ``job`` is not the job this plan would start on ``shards`` (None: it is)."""
    differs = spec.difference(job, wanted)
    if differs is not None:
        return f"it was not started for this request ({differs})"
    created = job.get("CreationTime")
    later = sorted(name for name, found in shards.objects.items()
                   if not isinstance(created, dt.datetime) or found.modified > created)
    if later:
        return (f"its training data was written after it started ({', '.join(later[:5])} in "
                f"{shards.data_uri})")
    return None


def _job_request(t: Target, request: Request, name: str, model_key: str, shards: Shards,
                 pull_request: int | None) -> dict[str, Any]:
    tags = {spec.TAG_MANAGED: "true", spec.TAG_TARGET: t.name, spec.TAG_MODEL_KEY: model_key}
    if pull_request is not None:
        tags[_pull_request_tag(pull_request)] = spec.WAITING
    return spec.job_request(
        name=name, image=xgboost_image(t), role_arn=t.training_role_arn,
        hyperparameters=spec.container_hyperparameters(request.hyperparameters.as_dict(),
                                                       training.SEED),
        data_uri=shards.data_uri, output_uri=names.training_jobs_prefix(t),
        training=request.training, tags=tags,
    )


def _pull_request_tag(pull_request: int) -> str:
    return f"{spec.TAG_PULL_REQUEST}-{pull_request}"


def _note_pull_request(t: Target, job: dict[str, Any], pull_request: int | None,
                       value: str = spec.WAITING) -> None:
    """Record that this pull request waits for the job too, so no other stops it (or, with
    ``RELEASED``, that it no longer does)."""
    if pull_request is None:
        return

    client("sagemaker", t.region).add_tags(  # overwrites the tag's value
        ResourceArn=job["TrainingJobArn"],
        Tags=[{"Key": _pull_request_tag(pull_request), "Value": value}])


def stop_superseded(t: Target, model_key: str, pull_request: int | None,
                    progress: Progress) -> list[str]:
    """Stop the running jobs this pull request's earlier plans started for other models.

    A job that another pull request also waits for is left alone. Without a pull request
    (a plan run by hand) nothing is stopped.
    """
    if pull_request is None:
        return []
    return stop_jobs_of_pull_request(
        t, pull_request, progress, keep_model_key=model_key,
        reason=f"superseded by this plan of pull request #{pull_request}")


def stop_jobs_of_pull_request(t: Target, pull_request: int, progress: Progress, *,
                              keep_model_key: str | None = None,
                              reason: str = "") -> list[str]:
    """Stop the target's running jobs tagged for ``pull_request`` that no other pull
    request waits for (but not the job of ``keep_model_key``); the names of those stopped.

    A job another pull request also waits for is left running, with a progress line, and
    marked as no longer waited for by this one: the last pull request to let go stops it.
    """
    mine = _pull_request_tag(pull_request)
    stopped = []
    for job in jobs.running(t, spec.job_name(t.name, "")):
        tags, name = job["Tags"], job["TrainingJobName"]
        if (tags.get(spec.TAG_TARGET) != t.name or mine not in tags
                or (keep_model_key is not None
                    and tags.get(spec.TAG_MODEL_KEY) == keep_model_key)):
            continue
        others = sorted((key.removeprefix(f"{spec.TAG_PULL_REQUEST}-")
                         for key, value in tags.items()
                         if key.startswith(f"{spec.TAG_PULL_REQUEST}-") and key != mine
                         and value != spec.RELEASED),
                        key=lambda n: (len(n), n))
        if others:
            if tags[mine] != spec.RELEASED:
                _note_pull_request(t, job, pull_request, spec.RELEASED)
            progress(f"left training job {name} running: pull request"
                     f"{'s' if len(others) > 1 else ''} "
                     f"{', '.join(f'#{n}' for n in others)} "
                     f"wait{'' if len(others) > 1 else 's'} for it too")
            continue
        if jobs.stop(t, name):
            stopped.append(name)
            progress(f"stopped training job {name}" + (f": {reason}" if reason else ""))
    return stopped


def wait(t: Target, job: dict[str, Any], progress: Progress,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll the job until it ends, with a progress line on every change and every minute."""
    name = job["TrainingJobName"]
    delay, said, said_at = POLL_FIRST, "", 0.0
    while job["TrainingJobStatus"] in spec.RUNNING:
        stage = str(job.get("SecondaryStatus"))
        if stage != said or time.monotonic() - said_at >= PROGRESS_EVERY:
            progress(spec.progress_line(job, _now()))
            said, said_at = stage, time.monotonic()
        sleep(delay)
        delay = min(delay * 1.5, POLL_MAX)
        found = jobs.describe(t, name)
        if found is None:
            raise BotError(f"training job {name} disappeared")
        job = found
    return job


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

