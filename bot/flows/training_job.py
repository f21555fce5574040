"""Train the candidate with a SageMaker training job: data shards, start or attach, wait, read.

1. The training data is written once per data version and instance count as Parquet shards,
   label first, one object per instance (``ShardedByS3Key``), streamed batch by batch.
2. The job's name comes from the model key (``bot.core.training_job.job_name``): a re-plan or
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
import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.adapters.aws.training_jobs import StoredObject
from bot.core import integrity
from bot.core import training_job as spec
from bot.core.data_checks import only_zero_and_one
from bot.core.request import Request, sha256_of
from bot.errors import BotError
from bot.settings import Target

Progress = Callable[[str], None]
#: Seconds between DescribeTrainingJob calls: short at first, at most ``POLL_MAX``.
POLL_FIRST, POLL_MAX = 0.5, 30.0
#: Seconds between progress lines while nothing changes.
PROGRESS_EVERY = 60.0
SHARD_LAYOUT = 2  # bump when the shard format changes, so old shards are not reused


class Superseded(BotError):
    """The plan's training job was stopped by a newer plan (or by hand): the newer plan owns
    the pull request's comment now."""


@dataclass(frozen=True)
class Shards:
    """The training data as the algorithm reads it: one Parquet object per instance."""

    data_uri: str  # the channel's S3 prefix, ending in "/"
    features: list[str]
    rows: int
    manifest_sha256: str = ""  # of manifest.json, which lists each shard's sha256
    #: The objects under ``data_uri`` as they were checked (by name below it): a job read
    #: these only if they were there before it started and are unchanged when it ends.
    objects: Mapping[str, StoredObject] = field(default_factory=dict)


def train(t: Target, request: Request, repo_root: Path, model_key: str, progress: Progress,
          pull_request: int | None = None, train_version: str | None = None,
          ) -> tuple[Any, dict[str, Any]]:
    """The booster a training job trained for ``model_key``, and how it was trained."""
    from bot.adapters.aws import artifacts
    from bot.core import training

    shards = prepare_data(t, request, repo_root, progress, train_version)
    attempt, job, attached = start_or_attach(t, request, model_key, shards, progress,
                                             pull_request)
    job = wait(t, job, progress)
    name = job["TrainingJobName"]
    if job["TrainingJobStatus"] == "Stopped" and job.get("SecondaryStatus") == "Stopped":
        raise Superseded(f"training job {name} {spec.failure(job)}")
    if job["TrainingJobStatus"] != "Completed":
        raise BotError(f"training job {name} {spec.failure(job)}")
    changed = _changed_since_checked(shards)
    if changed:
        raise BotError(f"training job {name}: {changed} while it trained, so its model is not "
                       "used; re-run plan to write the shards and train again")
    uri = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not uri:
        raise BotError(f"training job {name} completed without a model artifact")
    booster = training.name_features(training.load_model(artifacts.read_object(uri)),
                                     shards.features)
    how = {**spec.summary(job, attached, attempt), "rows": shards.rows,
           "data": shards.data_uri, "data_manifest_sha256": shards.manifest_sha256}
    cost = how["estimated_cost_usd"]
    progress(f"training job {name} completed: {how['instance_count']} x {how['instance_type']}, "
             f"{how['billable_seconds']:.0f} billable s each"
             + (f", about ${cost:.4f}" if cost is not None else ""))
    return booster, how


def prepare_data(t: Target, request: Request, repo_root: Path, progress: Progress,
                 train_version: str | None = None) -> Shards:
    """The training data split into ``instance_count`` Parquet objects: the ones written
    before for this data version, if they are still exactly what the plan job wrote, else
    written (again).

    ``training-data/<shard key>/`` holds ``manifest.json`` (the source, its version, each
    shard's name, sha256, size and rows), ``manifest.sig`` (the manifest's sha256 and the
    shard key, signed by the plan job) and the shards in a folder of their own. The plan
    role may write there, so nothing there is trusted for being there: reuse needs the
    signature to verify for this shard key, the manifest to have the signed digest and to
    describe this data, and every shard to hash to the manifest's sha256 with no other
    object beside them; anything else is written again, in a new folder.
    """
    from bot.adapters import data_files as data

    uri, target_column = request.data.train, request.data.target_column
    count = request.training.instance_count
    version = train_version or data.data_version(uri, repo_root)
    described = {"source": uri, "version": version, "target_column": target_column,
                 "shards": count, "layout": SHARD_LAYOUT}
    key = sha256_of(described)
    prefix = f"s3://{t.artifacts_bucket}/{_prefix(t)}training-data/{key[:32]}"
    reused = _verified_shards(t, key, prefix, described, progress)
    if reused is not None:
        progress(f"reusing the training data shards in {reused.data_uri} (signed manifest "
                 f"{reused.manifest_sha256[:12]}, every shard's sha256 checked)")
        return reused
    return _write_shards(t, key, prefix, described, repo_root, progress)


def _verified_shards(t: Target, key: str, prefix: str, described: dict[str, Any],
                     progress: Progress) -> Shards | None:
    """The shards under ``prefix`` if the plan job wrote them for this shard key and they
    are unchanged; None when there are none, or (with a progress line saying why) when
    they cannot be trusted."""
    from bot.adapters.aws import artifacts, signing
    from bot.adapters.aws import training_jobs as jobs

    manifest_uri, signature_uri = f"{prefix}/manifest.json", f"{prefix}/manifest.sig"
    if not artifacts.exists(manifest_uri):
        return None
    raw = artifacts.read_object(manifest_uri)
    digest = integrity.sha256_hex(raw)

    def distrust(why: str) -> None:
        progress(f"not reusing the training data shards in {prefix}/: {why}; writing them again")

    if not artifacts.exists(signature_uri):
        distrust("manifest.sig is missing")
        return None
    try:
        statement = signing.verify(t, artifacts.read_object(signature_uri), signature_uri)
    except signing.BadSignature as error:
        distrust(error.message)
        return None
    expected = integrity.training_data_statement(target=t.name, shard_key=key,
                                                 manifest_sha256=digest)
    differs = integrity.mismatch(statement, expected)
    if differs is not None:
        distrust(f"manifest.sig does not sign this manifest for this data ({differs})")
        return None
    try:
        manifest = json.loads(raw)
        folder = str(manifest["folder"])
        listed = {str(s["name"]): s for s in manifest["shard_files"]}
        if any(manifest.get(name) != value for name, value in described.items()):
            raise ValueError("it describes other data")
        if len(listed) != described["shards"] or "/" in folder + "".join(listed):
            raise ValueError("its shards do not match the instance count")
    except (ValueError, KeyError, TypeError) as error:
        distrust(f"manifest.json cannot be used ({error})")
        return None
    data_uri = f"{prefix}/{folder}/"
    found = jobs.list_objects(data_uri)
    extra = sorted(set(found) - set(listed))
    missing = sorted(set(listed) - set(found))
    rewritten = sorted(name for name, stored in found.items() if stored.versions > 1)
    if extra or missing or rewritten:
        distrust("objects " + ", ".join(extra) + " are not in the manifest" if extra
                 else "shards " + ", ".join(missing) + " are missing" if missing
                 else "shards " + ", ".join(rewritten) + " were written more than once")
        return None
    for name, shard in sorted(listed.items()):
        sha, size = jobs.sha256_of_object(f"{data_uri}{name}")
        if (sha, size) != (shard.get("sha256"), shard.get("size")):
            distrust(f"shard {name} has sha256 {sha[:12]} ({size} bytes), the signed manifest "
                     f"says {str(shard.get('sha256'))[:12]} ({shard.get('size')} bytes)")
            return None
    # Listed again: a shard rewritten while it was hashed is not taken for the one hashed.
    if jobs.list_objects(data_uri) != found:
        distrust("the shards changed while they were checked")
        return None
    return Shards(data_uri, list(manifest["features"]), int(manifest["rows"]), digest, found)


def _write_shards(t: Target, key: str, prefix: str, described: dict[str, Any],
                  repo_root: Path, progress: Progress) -> Shards:
    """Write the shards in a new folder, then their manifest, then its signature."""
    from bot.adapters import data_files as data
    from bot.adapters.aws import artifacts, signing
    from bot.adapters.aws import training_jobs as jobs

    uri, target_column, count = described["source"], described["target_column"], \
        described["shards"]
    # A folder nobody could know before: what anyone put in an earlier one is not read.
    folder = f"data-{uuid.uuid4().hex[:16]}"
    data_uri = f"{prefix}/{folder}/"
    progress(f"writing {uri} as {count} Parquet shard(s) to {data_uri} ...")
    with data.open_table(uri, repo_root, target_column) as table, \
            tempfile.TemporaryDirectory(prefix="promotion-bot-shards-") as directory:
        features = table.features(target_column)
        rows = write_shards(table, target_column, count, Path(directory))
        files = []
        for shard, shard_rows in zip(sorted(Path(directory).iterdir()), rows, strict=True):
            files.append({"name": shard.name, "sha256": _file_sha256(shard),
                          "size": shard.stat().st_size, "rows": shard_rows})
            jobs.upload(shard, f"{data_uri}{shard.name}")
    objects = jobs.list_objects(data_uri)
    manifest = {**described, "features": features, "rows": sum(rows), "folder": folder,
                "shard_files": files}
    raw = json.dumps(manifest, indent=2).encode()
    digest = integrity.sha256_hex(raw)
    artifacts.write_object(f"{prefix}/manifest.json", raw)
    statement = integrity.training_data_statement(target=t.name, shard_key=key,
                                                  manifest_sha256=digest)
    artifacts.write_object(f"{prefix}/manifest.sig", signing.sign(t, statement).to_bytes())
    return Shards(data_uri, features, sum(rows), digest, objects)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(8 * 2**20):
            digest.update(block)
    return digest.hexdigest()


def _changed_since_checked(shards: Shards) -> str | None:
    """How the shard objects differ from when they were checked (None: they do not)."""
    from bot.adapters.aws import training_jobs as jobs

    if not shards.objects:
        return None
    now = jobs.list_objects(shards.data_uri)
    if now == shards.objects:
        return None
    names = sorted(n for n in {*now, *shards.objects} if now.get(n) != shards.objects.get(n))
    return f"the training data in {shards.data_uri} changed ({', '.join(names[:5])})"


def write_shards(table: Any, target_column: str, count: int, directory: Path) -> list[int]:
    """Write ``table`` as ``count`` Parquet files, label first, every column float32; each
    batch is split evenly, so every shard gets a like share of every part of the table.
    """
    import numpy as np
    import pyarrow
    import pyarrow.parquet as pq

    from bot.core import training

    features = table.features(target_column)
    schema = table.schema
    wrong = [f"{name} ({schema.field(name).type})" for name in features
             if not _numeric(schema.field(name).type)]
    if wrong:
        raise BotError(f"{table.uri}: the XGBoost algorithm reads numbers only; not numbers: "
                       f"{', '.join(wrong[:10])}")
    if table.rows < count:
        raise BotError(f"{table.uri}: {table.rows} rows cannot be split across "
                       f"{count} training instances")
    columns = [target_column, *features]
    out = pyarrow.schema([(name, pyarrow.float32()) for name in columns])
    paths = [directory / f"part-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
    rows = [0] * count
    writers = [pq.ParquetWriter(path, out) for path in paths]
    try:
        for batch in table.batches(columns, training.BATCH_ROWS):
            labels = batch.column(0).to_numpy(zero_copy_only=False)
            if not only_zero_and_one(labels):
                raise BotError(f"{table.uri}: the target column {target_column!r} must hold "
                               "0 (legit) and 1 (fraud) only")
            cast = pyarrow.RecordBatch.from_arrays(
                [batch.column(i).cast(pyarrow.float32()) for i in range(len(columns))],
                schema=out)
            bounds = np.linspace(0, cast.num_rows, count + 1).astype(int)
            for index in range(count):
                part = cast.slice(int(bounds[index]), int(bounds[index + 1] - bounds[index]))
                if part.num_rows:
                    writers[index].write_batch(part)
                    rows[index] += part.num_rows
    finally:
        for writer in writers:
            writer.close()
    return rows


def _numeric(kind: Any) -> bool:
    import pyarrow

    return bool(pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind)
                or pyarrow.types.is_boolean(kind))


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
    from bot.adapters.aws import training_jobs as jobs

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
    from bot.adapters.aws.images import xgboost_image
    from bot.core import training

    tags = {spec.TAG_MANAGED: "true", spec.TAG_TARGET: t.name, spec.TAG_MODEL_KEY: model_key}
    if pull_request is not None:
        tags[_pull_request_tag(pull_request)] = spec.WAITING
    return spec.job_request(
        name=name, image=xgboost_image(t), role_arn=t.training_role_arn,
        hyperparameters=spec.container_hyperparameters(request.hyperparameters.as_dict(),
                                                       training.SEED),
        data_uri=shards.data_uri, output_uri=f"s3://{t.artifacts_bucket}/{_prefix(t)}training-jobs",
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
    from bot.adapters.aws.clients import client

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
    from bot.adapters.aws import training_jobs as jobs

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
    from bot.adapters.aws import training_jobs as jobs

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


def _prefix(t: Target) -> str:
    return f"{t.artifacts_prefix.strip('/')}/" if t.artifacts_prefix.strip("/") else ""
