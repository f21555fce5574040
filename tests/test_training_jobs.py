"""local-aws runs SageMaker training jobs for real: the XGBoost algorithm's steps in worker
processes, distributed through XGBoost's tracker, with SageMaker's states and errors."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost
from botocore.exceptions import ClientError

from bot.core import training
from bot.core import training_job as spec
from bot.core.request import Training
from bot.local import training_jobs
from bot.settings import Target

ROLE = "arn:aws:iam::123456789012:role/fraud-detection-sagemaker-training"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
#: Exact histograms: every feature has few distinct values, so the quantile sketch is exact
#: and training on shards in one collective gives the single-process model.
PARAMS = {"objective": "binary:logistic", "num_round": "20", "max_depth": "4", "eta": "0.3",
          "tree_method": "hist", "seed": "0"}


@pytest.fixture
def sagemaker(aws: Target) -> Iterator[Any]:
    """moto with the training role; every job's workers are gone after the test."""
    boto3.client("iam").create_role(RoleName=ROLE.rsplit("/", 1)[1],
                                    AssumeRolePolicyDocument="{}")
    yield boto3.client("sagemaker", region_name=aws.region)
    training_jobs.shutdown()  # held jobs end at once, without starting their workers
    training_jobs.release()


def table(rows: int, seed: int, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((rows, features)) * 6).astype(np.float32)
    y = ((x[:, 0] + x[:, 1] - x[:, 2] + rng.standard_normal(rows) * 3) > 4).astype(np.float32)
    return x, y


def put_shards(t: Target, prefix: str, parts: list[tuple[np.ndarray, np.ndarray]]) -> str:
    s3 = boto3.client("s3")
    for index, (x, y) in enumerate(parts):
        columns = [pa.array(y), *(pa.array(x[:, i]) for i in range(x.shape[1]))]
        names = ["label", *(f"f{i}" for i in range(x.shape[1]))]
        body = io.BytesIO()
        pq.write_table(pa.table(columns, names=names), body)
        s3.put_object(Bucket=t.artifacts_bucket, Key=f"{prefix}/part-{index}.parquet",
                      Body=body.getvalue())
    return f"s3://{t.artifacts_bucket}/{prefix}/"


def start(client: Any, t: Target, name: str, data_uri: str, instances: int = 1,
          hyperparameters: dict[str, str] | None = None, max_runtime: int = 600,
          image: str = IMAGE) -> None:
    request = spec.job_request(
        name=name, image=image, role_arn=ROLE, hyperparameters=hyperparameters or PARAMS,
        data_uri=data_uri, output_uri=f"s3://{t.artifacts_bucket}/jobs",
        training=Training(backend="sagemaker", instance_count=instances), tags={"k": "v"})
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = max_runtime
    client.create_training_job(**request)


def finished(client: Any, name: str) -> dict[str, Any]:
    for _ in range(1200):
        job: dict[str, Any] = client.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] not in spec.RUNNING:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{name} did not end")


def model_of(job: dict[str, Any]) -> xgboost.Booster:
    bucket, _, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").partition("/")
    return training.load_model(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def test_a_job_runs_through_sagemakers_states_and_writes_model_tar_gz(
    sagemaker: Any, aws: Target
) -> None:
    uri = put_shards(aws, "data/one", [table(600, 0)])
    with training_jobs.held():
        start(sagemaker, aws, "fraud-detection-one", uri)
        job = sagemaker.describe_training_job(TrainingJobName="fraud-detection-one")
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("InProgress", "Starting")
        assert "ModelArtifacts" not in job
    job = finished(sagemaker, "fraud-detection-one")

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Completed", "Completed")
    stages = [s["Status"] for s in job["SecondaryStatusTransitions"]]
    assert stages == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == (
        f"s3://{aws.artifacts_bucket}/jobs/fraud-detection-one/output/model.tar.gz")
    assert job["BillableTimeInSeconds"] >= 1
    booster = model_of(job)
    assert booster.num_boosted_rounds() == 20 and booster.num_features() == 8
    listed = sagemaker.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == ["fraud-detection-one"]


def test_two_instances_train_one_model_on_their_shards(sagemaker: Any, aws: Target) -> None:
    x, y = table(4000, 1)
    uri = put_shards(aws, "data/two", [(x[:2000], y[:2000]), (x[2000:], y[2000:])])
    start(sagemaker, aws, "fraud-detection-two", uri, instances=2)
    job = finished(sagemaker, "fraud-detection-two")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    params = {k: v for k, v in PARAMS.items() if k != "num_round"}
    whole = xgboost.train({**params, "nthread": 1}, xgboost.DMatrix(x, label=y), 20)
    one_shard = xgboost.train({**params, "nthread": 1}, xgboost.DMatrix(x[:2000], label=y[:2000]),
                              20)
    test_x, _ = table(2000, 2)
    check = xgboost.DMatrix(test_x)
    distributed = model_of(job).predict(check)
    # One model trained on both shards together is the model of all the data...
    np.testing.assert_allclose(distributed, whole.predict(check), atol=1e-5)
    # ...not a model of one shard (what independent workers would each have trained).
    assert np.abs(distributed - one_shard.predict(check)).max() > 0.05


def test_a_name_is_used_once_and_the_role_must_exist(sagemaker: Any, aws: Target) -> None:
    uri = put_shards(aws, "data/once", [table(300, 3)])
    with training_jobs.held():
        start(sagemaker, aws, "fraud-detection-once", uri)
        with pytest.raises(ClientError, match=r"ResourceInUse.*must be unique"):
            start(sagemaker, aws, "fraud-detection-once", uri)
        request = spec.job_request(
            name="fraud-detection-norole", image=IMAGE, role_arn=ROLE + "-missing",
            hyperparameters=PARAMS, data_uri=uri, output_uri=f"s3://{aws.artifacts_bucket}/j",
            training=Training(), tags={})
        with pytest.raises(ClientError, match="Could not assume role"):
            sagemaker.create_training_job(**request)


def test_stop_training_job_stops_it_and_only_while_it_runs(
    sagemaker: Any, aws: Target
) -> None:
    uri = put_shards(aws, "data/stop", [table(300, 4)])
    with training_jobs.held():
        start(sagemaker, aws, "fraud-detection-stop", uri)
        sagemaker.stop_training_job(TrainingJobName="fraud-detection-stop")
        assert sagemaker.describe_training_job(
            TrainingJobName="fraud-detection-stop")["TrainingJobStatus"] in ("Stopping",
                                                                            "Stopped")
        job = finished(sagemaker, "fraud-detection-stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    with pytest.raises(ClientError, match="training job is in status Stopped"):
        sagemaker.stop_training_job(TrainingJobName="fraud-detection-stop")


def test_a_job_past_its_max_runtime_is_stopped(sagemaker: Any, aws: Target) -> None:
    uri = put_shards(aws, "data/slow", [table(300, 5)])
    with training_jobs.held():  # never gets its instances
        start(sagemaker, aws, "fraud-detection-slow", uri, max_runtime=1)
        job = finished(sagemaker, "fraud-detection-slow")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert "maximum runtime" in spec.failure(job)


def test_failures_carry_the_algorithms_reason(sagemaker: Any, aws: Target) -> None:
    x, y = table(300, 6)
    uri = put_shards(aws, "data/bad-label", [(x, y * 3)])
    start(sagemaker, aws, "fraud-detection-label", uri)
    start(sagemaker, aws, "fraud-detection-rounds", uri,
          hyperparameters={k: v for k, v in PARAMS.items() if k != "num_round"})
    start(sagemaker, aws, "fraud-detection-image", uri, image=IMAGE.replace("3.0-5", "1.7-1"))

    label = finished(sagemaker, "fraud-detection-label")
    assert label["TrainingJobStatus"] == "Failed"
    assert label["FailureReason"].startswith("AlgorithmError: XGB train call failed")
    assert "label" in label["FailureReason"]
    rounds = finished(sagemaker, "fraud-detection-rounds")
    assert rounds["FailureReason"] == "ClientError: Missing required hyperparameter: num_round"
    image = finished(sagemaker, "fraud-detection-image")
    assert "runs the XGBoost 3 algorithm" in image["FailureReason"]
    assert spec.failure(rounds) == "failed: ClientError: Missing required hyperparameter: " \
        "num_round"


def test_job_names_fit_sagemakers_rules() -> None:
    key = "ab12" * 16
    assert spec.job_name("fraud-detection", key) == "fraud-detection-" + key[:24]
    assert spec.job_name("fraud-detection", key, 2) == "fraud-detection-" + key[:24] + "-2"
    odd = spec.job_name("Fraud_Detection.v2" * 4, key, 3)
    assert len(odd) <= 63 and odd.replace("-", "").isalnum()


def test_the_channel_config_names_parquet_and_shards_only_with_several_instances() -> None:
    one = spec.job_request(name="n", image=IMAGE, role_arn=ROLE, hyperparameters={},
                           data_uri="s3://b/d/", output_uri="s3://b/o",
                           training=Training(backend="sagemaker"), tags={})
    two = spec.job_request(name="n", image=IMAGE, role_arn=ROLE, hyperparameters={},
                           data_uri="s3://b/d/", output_uri="s3://b/o",
                           training=Training(backend="sagemaker", instance_count=2,
                                             max_runtime_minutes=5), tags={})
    source = one["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["S3DataDistributionType"] == "FullyReplicated"
    assert two["InputDataConfig"][0]["DataSource"]["S3DataSource"][
        "S3DataDistributionType"] == "ShardedByS3Key"
    assert one["InputDataConfig"][0]["ContentType"] == "application/x-parquet"
    assert two["StoppingCondition"] == {"MaxRuntimeInSeconds": 300}
    assert json.dumps(spec.container_hyperparameters({"num_round": 150, "eta": 1.0}, 0)) == (
        '{"tree_method": "hist", "seed": "0", "num_round": "150", "eta": "1"}')


def test_a_newer_plan_stops_only_its_pull_requests_jobs_for_other_models(
    sagemaker: Any, aws: Target
) -> None:
    from bot.flows.training_job import stop_superseded

    uri = put_shards(aws, "data/prs", [table(300, 7)])
    tags = {"old": {"promotion-bot:pull-request-7": "planned"},
            "shared": {"promotion-bot:pull-request-7": "planned",
                       "promotion-bot:pull-request-8": "planned"},
            "same": {"promotion-bot:pull-request-7": "planned"},
            "other": {"promotion-bot:pull-request-8": "planned"}}
    with training_jobs.held():
        for key, extra in tags.items():
            request = spec.job_request(
                name=spec.job_name(aws.name, key * 10), image=IMAGE, role_arn=ROLE,
                hyperparameters=PARAMS, data_uri=uri,
                output_uri=f"s3://{aws.artifacts_bucket}/jobs", training=Training(),
                tags={spec.TAG_MANAGED: "true", spec.TAG_TARGET: aws.name,
                      spec.TAG_MODEL_KEY: key * 10, **extra})
            sagemaker.create_training_job(**request)
        said: list[str] = []
        stopped = stop_superseded(aws, "same" * 10, 7, said.append)
        assert stopped == [spec.job_name(aws.name, "old" * 10)]
        assert stop_superseded(aws, "new" * 10, None, said.append) == []  # no PR: none
        assert "superseded by this plan of pull request #7" in said[0]
        states = {key: sagemaker.describe_training_job(TrainingJobName=spec.job_name(
            aws.name, key * 10))["TrainingJobStatus"] for key in tags}
    assert states.pop("old") in ("Stopping", "Stopped")
    assert states == {"shared": "InProgress", "same": "InProgress", "other": "InProgress"}
