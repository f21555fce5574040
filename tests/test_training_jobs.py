"""local-aws runs SageMaker training jobs for real: the XGBoost algorithm's steps in worker
processes, distributed through XGBoost's tracker, with SageMaker's states and errors."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost
from botocore.exceptions import ClientError

from bot.core import training
from bot.core import training_job_spec as spec
from bot.core.request import Training
from bot.local import training_runner
from bot.settings import Target, settings

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
    training_runner.shutdown()  # held jobs end at once, without starting their workers
    training_runner.release()


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
    with training_runner.held():
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
    with training_runner.held():
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
    with training_runner.held():
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
    with training_runner.held():  # never gets its instances
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


def start_tagged(client: Any, t: Target, uri: str, key: str, pull_requests: tuple[int, ...],
                 target: str | None = None) -> str:
    """Start the job of model key ``key * 10`` as the plan does: tagged with its target, its
    model key and the pull requests that wait for it; its name."""
    name = spec.job_name(target or t.name, key * 10)
    client.create_training_job(**spec.job_request(
        name=name, image=IMAGE, role_arn=ROLE, hyperparameters=PARAMS, data_uri=uri,
        output_uri=f"s3://{t.artifacts_bucket}/jobs", training=Training(),
        tags={spec.TAG_MANAGED: "true", spec.TAG_TARGET: target or t.name,
              spec.TAG_MODEL_KEY: key * 10,
              **{f"{spec.TAG_PULL_REQUEST}-{n}": "planned" for n in pull_requests}}))
    return name


def states_of(client: Any, names: dict[str, str]) -> dict[str, str]:
    return {key: client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
            for key, name in names.items()}


def test_a_newer_plan_stops_only_its_pull_requests_jobs_for_other_models(
    sagemaker: Any, aws: Target
) -> None:
    from bot.flows.sagemaker_training import stop_superseded

    uri = put_shards(aws, "data/prs", [table(300, 7)])
    waiting = {"old": (7,), "shared": (7, 8), "same": (7,), "other": (8,)}
    with training_runner.held():
        names = {key: start_tagged(sagemaker, aws, uri, key, prs)
                 for key, prs in waiting.items()}
        said: list[str] = []
        stopped = stop_superseded(aws, "same" * 10, 7, said.append)
        assert stopped == [names["old"]]
        assert stop_superseded(aws, "new" * 10, None, said.append) == []  # no PR: none
        assert f"stopped training job {names['old']}: superseded by this plan of pull " \
            "request #7" in said
        assert f"left training job {names['shared']} running: pull request #8 waits for it " \
            "too" in said
        states = states_of(sagemaker, names)
    assert states.pop("old") in ("Stopping", "Stopped")
    assert states == {"shared": "InProgress", "same": "InProgress", "other": "InProgress"}


def test_closing_a_pull_request_stops_the_jobs_it_alone_waits_for(
    sagemaker: Any, aws: Target
) -> None:
    from bot.flows.sagemaker_training import stop_jobs_of_pull_request

    uri = put_shards(aws, "data/closed", [table(300, 8)])
    done = start_tagged(sagemaker, aws, uri, "done", (7,))  # trains to the end
    assert finished(sagemaker, done)["TrainingJobStatus"] == "Completed"
    waiting = {"first": (7,), "second": (7,), "shared": (7, 12, 8), "other": (8,),
               "nobody": ()}
    with training_runner.held():
        names = {key: start_tagged(sagemaker, aws, uri, key, prs)
                 for key, prs in waiting.items()}
        # Another target whose job names share the prefix: its jobs are its own.
        names["elsewhere"] = start_tagged(sagemaker, aws, uri, "else", (7,),
                                          target=f"{aws.name}-eu")
        said: list[str] = []
        stopped = stop_jobs_of_pull_request(aws, 7, said.append, reason="closed")
        assert sorted(stopped) == sorted([names["first"], names["second"]])
        assert sorted(said) == sorted([
            f"stopped training job {names['first']}: closed",
            f"stopped training job {names['second']}: closed",
            f"left training job {names['shared']} running: pull requests #8, #12 wait for "
            "it too"])
        # The shared job knows that pull request 7 no longer waits for it.
        assert tags_of(sagemaker, names["shared"]) == {"7": "released", "8": "planned",
                                                       "12": "planned"}
        said.clear()
        assert stop_jobs_of_pull_request(aws, 7, said.append) == []  # nothing left to stop
        assert said == [f"left training job {names['shared']} running: pull requests #8, "
                        "#12 wait for it too"]
        # keep_model_key spares the plan's own job (a plan's superseded jobs).
        assert stop_jobs_of_pull_request(aws, 8, said.append,
                                         keep_model_key="other" * 10) == []
        before = states_of(sagemaker, {**names, "done": done})
        # The last pull request to let go of the shared job stops it.
        assert stop_jobs_of_pull_request(aws, 12, said.append) == [names["shared"]]
    assert before.pop("first") in ("Stopping", "Stopped")
    assert before.pop("second") in ("Stopping", "Stopped")
    assert before == {"shared": "InProgress", "other": "InProgress", "nobody": "InProgress",
                      "elsewhere": "InProgress", "done": "Completed"}
    assert tags_of(sagemaker, names["shared"]) == {"7": "released", "8": "released",
                                                   "12": "planned"}
    assert finished(sagemaker, names["shared"])["TrainingJobStatus"] == "Stopped"
    assert finished(sagemaker, names["other"])["TrainingJobStatus"] == "Completed"


def tags_of(client: Any, name: str) -> dict[str, str]:
    """The pull-request tags of a job, by number, with their (last) values."""
    arn = client.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
    prefix = f"{spec.TAG_PULL_REQUEST}-"
    return {tag["Key"].removeprefix(prefix): tag["Value"]
            for tag in client.list_tags(ResourceArn=arn)["Tags"]
            if tag["Key"].startswith(prefix)}


@pytest.fixture
def requests_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root to run from: the target's request file, and files that are not
    request files of a target."""
    folder = tmp_path / "promotion-requests"
    folder.mkdir()
    (folder / "fraud-detection.yaml").write_text("experiment_id: e\n")
    (folder / "README.md").write_text("not a request\n")
    (folder / "Bad_Name.yml").write_text("experiment_id: e\n")
    monkeypatch.chdir(tmp_path)
    return folder


def test_stop_training_stops_the_pull_requests_jobs_in_the_request_files_targets(
    sagemaker: Any, aws: Target, requests_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    uri = put_shards(aws, "data/command", [table(300, 9)])
    with training_runner.held():
        mine = start_tagged(sagemaker, aws, uri, "mine", (7,))
        shared = start_tagged(sagemaker, aws, uri, "shared", (7, 8))
        assert cli.main(["stop-training", "--pull-request", "7"]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines() == [
            f"fraud-detection: stopped training job {mine}: no pull request other than #7 "
            "waits for it",
            f"fraud-detection: left training job {shared} running: pull request #8 waits "
            "for it too",
            "stopped 1 training job of pull request #7"]
        assert "'Bad_Name' cannot be a target" in err
        assert states_of(sagemaker, {"shared": shared}) == {"shared": "InProgress"}

        assert cli.main(["stop-training", "--pull-request", "9"]) == 0
        assert capsys.readouterr().out == "stopped 0 training jobs of pull request #9\n"
        # Another folder of request files: no target there, nothing to look in.
        (requests_dir.parent / "elsewhere").mkdir()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("PROMOTION_BOT_REQUESTS_DIR", "elsewhere")
            settings.cache_clear()
            assert cli.main(["stop-training", "--pull-request", "8"]) == 0
        settings.cache_clear()
        out, err = capsys.readouterr()
        assert (out, "no request files in elsewhere/" in err) == (
            "stopped 0 training jobs of pull request #8\n", True)
        # --target names the targets instead.
        assert cli.main(["stop-training", "--pull-request", "8", "--target",
                         "fraud-detection"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == (
            "stopped 1 training job of pull request #8")
    assert finished(sagemaker, mine)["TrainingJobStatus"] == "Stopped"
    assert finished(sagemaker, shared)["TrainingJobStatus"] == "Stopped"


def test_stop_training_turns_aws_refusals_into_one_line(
    sagemaker: Any, aws: Target, requests_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli
    from bot.local import faults
    from bot.local.faults import FaultPlan, Rule

    denied = FaultPlan(rules=(Rule(service="sagemaker", operation="ListTrainingJobs",
                                   code="AccessDeniedException",
                                   message="not authorized to perform: "
                                           "sagemaker:ListTrainingJobs"),))
    with faults.injected(denied):
        assert cli.main(["stop-training", "--pull-request", "7"]) == 2
    out, err = capsys.readouterr()
    assert out == "stopped 0 training jobs of pull request #7 (could not look in 1 of 1 " \
        "target)\n"
    (line,) = [line for line in err.splitlines() if "Bad_Name" not in line]
    assert line == ("promotion-bot stop-training: fraud-detection: cannot list training jobs: "
                    "access denied (not authorized to perform: sagemaker:ListTrainingJobs); "
                    "see the IAM section of docs/architecture.md")
    assert "Traceback" not in err


def test_stop_training_says_when_aws_cannot_be_reached(
    fake_credentials: None, requests_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("PROMOTION_BOT_AWS_MAX_ATTEMPTS", "1")
    assert cli.main(["stop-training", "--pull-request", "7"]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("stopped 0 training jobs of pull request #7 (could not look in")
    assert ("promotion-bot stop-training: fraud-detection: AWS failed while stopping the "
            "training jobs of pull request #7: cannot reach AWS") in err
    assert "Traceback" not in err


def test_stop_training_refuses_a_bad_number_or_target(
    requests_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    assert cli.main(["stop-training", "--pull-request", "0"]) == 2
    assert "a pull request's number is 1 or more" in capsys.readouterr().err
    assert cli.main(["stop-training", "--pull-request", "3", "--target", "No_Such"]) == 2
    assert "'No_Such' cannot be a target" in capsys.readouterr().err
