"""What a training job trains on is what the plan read: shards are reused only when the plan
job's signed manifest vouches for every one of them, and a job of the expected name is
attached to only when it is the job this plan would start, on those shards."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import model_key_of, small_frame

from bot.adapters.aws import s3
from bot.adapters.aws.images import xgboost_image
from bot.core import training_job_spec as spec
from bot.core.request import Request
from bot.errors import BotError
from bot.flows import sagemaker_training, training_data
from bot.local import training_runner as local_jobs
from bot.settings import Target

ROLE = "arn:aws:iam::123456789012:role/fraud-detection-sagemaker-training"


def request(eta: float = 0.3, instances: int = 2) -> Request:
    return Request.model_validate(yaml.safe_load(
        "experiment_id: exp-inputs\n"
        "algorithm: xgboost\n"
        f"hyperparameters: {{objective: 'binary:logistic', num_round: 5, max_depth: 3, "
        f"eta: {eta}, subsample: 1, colsample_bytree: 1}}\n"
        "data: {train: data/train.parquet, test: data/test.parquet}\n"
        f"training: {{backend: sagemaker, instance_count: {instances}}}\n"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    frame = small_frame(900, 3)
    frame.iloc[:700].to_parquet(tmp_path / "data" / "train.parquet", index=False)
    frame.iloc[700:].to_parquet(tmp_path / "data" / "test.parquet", index=False)
    return tmp_path


@pytest.fixture
def sagemaker(aws: Target) -> Iterator[Any]:
    boto3.client("iam").create_role(RoleName=ROLE.rsplit("/", 1)[1],
                                    AssumeRolePolicyDocument="{}")
    yield boto3.client("sagemaker", region_name=aws.region)
    local_jobs.shutdown()
    local_jobs.release()


def prepare(t: Target, repo: Path, said: list[str] | None = None,
            instances: int = 2) -> training_data.Shards:
    return training_data.prepare_data(t, request(instances=instances), repo,
                                     (said if said is not None else []).append)


def s3_uri(uri: str) -> tuple[str, str]:
    return s3.split_uri(uri)


def put(uri: str, body: bytes) -> None:
    bucket, key = s3_uri(uri)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def get(uri: str) -> bytes:
    bucket, key = s3_uri(uri)
    return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def relabelled(shard: bytes) -> bytes:
    """The shard with every label flipped: a valid Parquet file the algorithm would read."""
    table = pq.read_table(io.BytesIO(shard))
    import pyarrow.compute as pc

    table = table.set_column(0, table.schema.field(0), pc.subtract(1, table.column(0)))
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def manifest_of(shards: training_data.Shards) -> dict[str, Any]:
    prefix = shards.data_uri.rstrip("/").rsplit("/", 1)[0]
    value: dict[str, Any] = json.loads(get(f"{prefix}/manifest.json"))
    return value


def test_shards_are_written_once_with_a_signed_manifest_and_reused_after_a_rehash(
    aws: Target, repo: Path
) -> None:
    first = prepare(aws, repo)
    manifest = manifest_of(first)
    assert [f["name"] for f in manifest["shard_files"]] == [
        "part-00000-of-00002.parquet", "part-00001-of-00002.parquet"]
    for shard in manifest["shard_files"]:
        body = get(first.data_uri + shard["name"])
        import hashlib

        assert (shard["sha256"], shard["size"]) == (hashlib.sha256(body).hexdigest(), len(body))
    assert sum(f["rows"] for f in manifest["shard_files"]) == manifest["rows"] == 700
    said: list[str] = []
    again = prepare(aws, repo, said)
    assert (again.data_uri, again.manifest_sha256) == (first.data_uri, first.manifest_sha256)
    assert said == [f"reusing the training data shards in {first.data_uri} (signed manifest "
                    f"{first.manifest_sha256[:12]}, every shard's sha256 checked)"]


def test_a_tampered_shard_is_detected_and_the_shards_written_again_elsewhere(
    aws: Target, repo: Path
) -> None:
    first = prepare(aws, repo)
    name = "part-00001-of-00002.parquet"
    put(first.data_uri + name, relabelled(get(first.data_uri + name)))

    said: list[str] = []
    second = prepare(aws, repo, said)
    assert said[0].startswith(f"not reusing the training data shards in "
                              f"{first.data_uri.rsplit('/', 2)[0]}/: shard {name} has sha256 ")
    assert said[0].endswith("; writing them again")
    assert second.data_uri != first.data_uri  # a new folder: nothing put beside it is read
    assert prepare(aws, repo).data_uri == second.data_uri  # and that one is reused


def test_a_manifest_rewritten_to_match_tampered_shards_is_not_trusted(
    aws: Target, repo: Path
) -> None:
    """The plan role may write training-data/*: a consistent forgery of shards and manifest
    does not carry the plan job's signature of that manifest."""
    import hashlib

    first = prepare(aws, repo)
    prefix = first.data_uri.rstrip("/").rsplit("/", 1)[0]
    manifest = manifest_of(first)
    for shard in manifest["shard_files"]:
        forged = relabelled(get(first.data_uri + shard["name"]))
        put(first.data_uri + shard["name"], forged)
        shard.update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    put(f"{prefix}/manifest.json", json.dumps(manifest, indent=2).encode())

    said: list[str] = []
    second = prepare(aws, repo, said)
    assert said[0].startswith(f"not reusing the training data shards in {prefix}/: "
                              "manifest.sig does not sign this manifest for this data "
                              "(manifest_sha256: signed ")
    assert second.data_uri != first.data_uri


def test_signed_shards_of_other_data_copied_into_place_are_not_trusted(
    aws: Target, repo: Path
) -> None:
    one = prepare(aws, repo, instances=1)
    two = prepare(aws, repo, instances=2)
    source = one.data_uri.rstrip("/").rsplit("/", 1)[0]
    target_prefix = two.data_uri.rstrip("/").rsplit("/", 1)[0]
    for name in ("manifest.json", "manifest.sig"):  # validly signed, for another shard key
        put(f"{target_prefix}/{name}", get(f"{source}/{name}"))
    said: list[str] = []
    prepare(aws, repo, said)
    assert "manifest.sig does not sign this manifest for this data (shard_key: signed" in said[0]


@pytest.mark.parametrize("change", ["extra", "missing-signature"])
def test_an_object_beside_the_shards_or_a_missing_signature_means_writing_again(
    aws: Target, repo: Path, change: str
) -> None:
    first = prepare(aws, repo)
    prefix = first.data_uri.rstrip("/").rsplit("/", 1)[0]
    if change == "extra":  # SageMaker would read every object under the channel's prefix
        put(first.data_uri + "part-00002-of-00002.parquet", get(first.data_uri +
                                                               "part-00000-of-00002.parquet"))
        why = "objects part-00002-of-00002.parquet are not in the manifest"
    else:
        bucket, key = s3_uri(f"{prefix}/manifest.sig")
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)
        why = "manifest.sig is missing"
    said: list[str] = []
    assert prepare(aws, repo, said).data_uri != first.data_uri
    assert said[0] == f"not reusing the training data shards in {prefix}/: {why}; writing " \
        "them again"


def impostor(sagemaker: Any, t: Target, name: str, shards: training_data.Shards,
             **changes: Any) -> None:
    """A job under the name the plan expects, as someone else configured it."""
    wanted = spec.job_request(
        name=name, image=changes.get("image", xgboost_image(t)), role_arn=ROLE,
        hyperparameters=changes.get("hyperparameters", spec.container_hyperparameters(
            request().hyperparameters.as_dict(), 0)),
        data_uri=changes.get("data_uri", shards.data_uri),
        output_uri=f"s3://{t.artifacts_bucket}/{t.artifacts_prefix}/training-jobs",
        training=request().training, tags={})
    sagemaker.create_training_job(**wanted)


@pytest.mark.parametrize("change, differs", [
    ({"hyperparameters": {"num_round": "5", "eta": "0.9"}}, "its hyperparameters: "),
    ({"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"},
     "its image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5, not "),
    ({"data_uri": "s3://fraud-detection-models/elsewhere/"},
     "its input channels: train s3://fraud-detection-models/elsewhere/ (ShardedByS3Key), not"),
], ids=["hyperparameters", "image", "data"])
def test_a_job_of_the_expected_name_but_another_configuration_is_not_attached(
    aws: Target, repo: Path, sagemaker: Any, change: dict[str, Any], differs: str
) -> None:
    shards = prepare(aws, repo)
    model_key = model_key_of(aws, request(), repo)
    name = spec.job_name(aws.name, model_key)
    said: list[str] = []
    with local_jobs.held():
        impostor(sagemaker, aws, name, shards, **change)
        attempt, job, attached = sagemaker_training.start_or_attach(
            aws, request(), model_key, shards, said.append, None)
    assert (attempt, job["TrainingJobName"], attached) == (2, f"{name}-2", False)
    assert said[0].startswith(f"not attaching to training job {name}: it was not started for "
                              f"this request ({differs}")
    assert said[1].startswith(f"started training job {name}-2: 2 x ml.m5.xlarge")


def test_a_job_is_attached_only_to_shards_written_once_before_it_started(
    aws: Target, repo: Path, sagemaker: Any
) -> None:
    """A job configured as the plan would, but whose shards were written again after it
    started (bytes put back as the manifest lists them): what it read in between is unknown.
    The models bucket is versioned (deploy/promotion-bot.yaml): a second version says so."""
    boto3.client("s3").put_bucket_versioning(Bucket=aws.artifacts_bucket,
                                             VersioningConfiguration={"Status": "Enabled"})
    shards = prepare(aws, repo)
    model_key = model_key_of(aws, request(), repo)
    name = spec.job_name(aws.name, model_key)
    with local_jobs.held():
        impostor(sagemaker, aws, name, shards)
        said: list[str] = []
        assert sagemaker_training.start_or_attach(aws, request(), model_key, shards, said.append,
                                            None)[0] == 1
        assert said[0].startswith(f"attaching to training job {name}")
        shard = "part-00000-of-00002.parquet"
        put(shards.data_uri + shard, get(shards.data_uri + shard))
        said.clear()
        rechecked = prepare(aws, repo, said)
        attempt, job, _ = sagemaker_training.start_or_attach(aws, request(), model_key, rechecked,
                                                       said.append, None)
    assert said[0].endswith(f"shards {shard} were written more than once; writing them again")
    assert (attempt, job["TrainingJobName"]) == (2, f"{name}-2")
    assert said[-2].startswith(f"not attaching to training job {name}: it was not started for "
                               f"this request (its input channels: train {shards.data_uri}")


def test_without_versions_a_job_older_than_its_shards_is_not_attached(
    aws: Target, repo: Path, sagemaker: Any
) -> None:
    """In an unversioned bucket the shards' LastModified must be no later than the job's
    CreationTime (the job is dated back here rather than waiting for the clock)."""
    import datetime as dt

    shards = prepare(aws, repo)
    model_key = model_key_of(aws, request(), repo)
    name = spec.job_name(aws.name, model_key)
    with local_jobs.held():
        impostor(sagemaker, aws, name, shards)
        job = sagemaker.describe_training_job(TrainingJobName=name)
    wanted = sagemaker_training._job_request(aws, request(), name, model_key, shards, None)
    assert sagemaker_training._not_this_plans(job, wanted, shards) is None
    earlier = {**job, "CreationTime": min(o.modified for o in shards.objects.values())
               - dt.timedelta(seconds=1)}
    assert sagemaker_training._not_this_plans(earlier, wanted, shards) == (
        "its training data was written after it started (part-00000-of-00002.parquet, "
        f"part-00001-of-00002.parquet in {shards.data_uri})")


def test_a_shard_changed_while_the_job_trains_voids_its_model(
    aws: Target, repo: Path, sagemaker: Any
) -> None:
    name = "part-00000-of-00002.parquet"

    def tamper_once_started(line: str) -> None:
        if line.startswith("started training job"):
            [uri] = [u for u in objects(aws) if u.endswith(name)]
            put(uri, relabelled(get(uri)))

    model_key = model_key_of(aws, request(), repo)
    with pytest.raises(BotError) as caught:
        sagemaker_training.train(aws, request(), repo, model_key, tamper_once_started)
    assert caught.value.message.startswith(
        f"training job {spec.job_name(aws.name, model_key)}: the training data in ")
    assert caught.value.message.endswith(
        f"changed ({name}) while it trained, so its model is not used; re-run plan to write "
        "the shards and train again")


def objects(t: Target) -> list[str]:
    """Every object under training-data/, as s3:// URIs."""
    prefix = f"{t.artifacts_prefix}/training-data/"
    listed = boto3.client("s3").list_objects_v2(Bucket=t.artifacts_bucket, Prefix=prefix)
    return [f"s3://{t.artifacts_bucket}/{o['Key']}" for o in listed.get("Contents", [])]
