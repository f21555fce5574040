"""`training.backend: sagemaker` on the embedded default: plan trains with a training job,
apply deploys its model; a killed plan's re-run attaches; a superseded plan's job stops."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import GitRepo, model_key_of, small_frame

from bot import cli
from bot.adapters.aws import endpoint
from bot.adapters.aws import s3 as s3_io
from bot.core import training
from bot.local import training_runner
from bot.local.aws_server import LocalAWS
from bot.local.github import LocalGitHub
from bot.settings import target

T = target("fraud-detection")
PATH = "promotion-requests/fraud-detection.yaml"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def request_text(eta: float, instances: int, experiment: str = "exp-job") -> str:
    return (
        f"experiment_id: {experiment}\n"
        "algorithm: xgboost\n"
        "hyperparameters:\n"
        "  objective: binary:logistic\n"
        "  num_round: 30\n"
        "  max_depth: 4\n"
        f"  eta: {eta}\n"
        "  subsample: 0.8\n"
        "  colsample_bytree: 0.8\n"
        "data:\n"
        "  train: s3://fraud-detection-data/processed/train.parquet\n"
        "  test: s3://fraud-detection-data/processed/test.parquet\n"
        "gates:\n"
        "  minimum: {accuracy: 0.5}\n"
        '  accept_few_frauds: "sample data, 7 test frauds"\n'
        "rollout:\n"
        "  challenger: {traffic_percent: 1}\n"
        "training:\n"
        "  backend: sagemaker\n"
        "  instance_type: ml.m5.2xlarge\n"
        f"  instance_count: {instances}\n"
        "  max_runtime_minutes: 30\n"
    )


@pytest.fixture(autouse=True)
def quiet(no_github_context: None, endpoint_polls_fast: None) -> Iterator[None]:
    yield
    training_runner.release()


def jobs() -> dict[str, dict[str, Any]]:
    sagemaker = boto3.client("sagemaker")
    names = [j["TrainingJobName"] for j in
             sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]]
    return {name: sagemaker.describe_training_job(TrainingJobName=name) for name in names}


def until(check: Any, what: str, seconds: float = 120) -> Any:
    """Poll ``check`` until it returns something truthy (bounded, not a timing assertion)."""
    for _ in range(int(seconds / 0.1)):
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def read_plan(out: Path) -> dict[str, Any]:
    """plan.json's top-level fields, with the candidate's metrics and confusion matrix."""
    plan: dict[str, Any] = json.loads((out / "plan.json").read_text())
    return {**plan, "metrics": plan["evaluation"]["metrics"],
            "confusion_matrix": plan["evaluation"]["confusion_matrix"]}


@pytest.mark.parametrize("instances", [1, 2])
def test_a_plan_trained_by_a_training_job_is_applied_like_any_other(
    production: LocalAWS, git_repo: GitRepo, tmp_path: Path, instances: int
) -> None:
    before = git_repo.head()
    after = git_repo.commit({PATH: request_text(0.2, instances, f"exp-job-{instances}")},
                            "Promote")
    code = cli.main(["plan", str(git_repo.path / PATH), "--out", str(tmp_path / "out"),
                     "--no-github"])
    plan = read_plan(tmp_path / "out")

    assert code == 0 and plan["passed"] and plan["trained"]
    how = plan["training"]
    assert (how["backend"], how["instance_count"], how["instance_type"], how["attached"]) == (
        "sagemaker", instances, "ml.m5.2xlarge", False)
    job = jobs()[how["job"]]
    assert job["TrainingJobStatus"] == "Completed"
    assert job["ResourceConfig"]["InstanceCount"] == instances
    source = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    bucket, _, prefix = source["S3Uri"].removeprefix("s3://").partition("/")
    shards = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert len(shards) == instances  # ShardedByS3Key: one object per instance
    # The stored model is the job's, named like a local one and in the serving format.
    stored = training.load_model(s3_io.read_uri(plan["artifact"]))
    assert stored.feature_names == ["Time", *(f"V{i}" for i in range(1, 29)), "Amount"]
    assert "trained by SageMaker training job" in (tmp_path / "out" / "comment.md").read_text()

    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", before,
                     "--after", after]) == 0
    live = endpoint.read(T)
    assert live is not None
    challenger = live.variant("challenger")
    assert challenger is not None and challenger.model_data_url == plan["artifact"]


def test_two_instances_evaluate_like_one_model_of_all_the_data(
    production: LocalAWS, tmp_path: Path
) -> None:
    """The two-instance model's metrics are those of one model trained on all the rows:
    with few distinct values per feature the histograms are exact, so one collective of two
    instances trains the very model one process trains (here, or on one instance)."""
    frame = small_frame(6000, 5).round(1)
    results = {}
    for backend in ("two", "one", "local"):
        repo = tmp_path / backend
        (repo / "data").mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        frame.iloc[:4800].to_parquet(repo / "data" / "train.parquet", index=False)
        frame.iloc[4800:].to_parquet(repo / "data" / "test.parquet", index=False)
        text = (request_text(0.3, 2 if backend == "two" else 1, f"exp-{backend}")
                .replace("s3://fraud-detection-data/processed/", "data/")
                .replace("subsample: 0.8", "subsample: 1").replace("colsample_bytree: 0.8",
                                                                   "colsample_bytree: 1"))
        if backend == "local":
            text = text[:text.index("training:")]
        (repo / PATH).parent.mkdir(parents=True)
        (repo / PATH).write_text(text)
        # The champion, trained on other data, flags almost nothing on these rows, so the
        # alert gate blocks every backend's model alike; what matters here are the metrics.
        assert cli.main(["plan", str(repo / PATH), "--out", str(repo / "out"),
                         "--no-github"]) == 1
        results[backend] = read_plan(repo / "out")
        assert [g["kind"] for g in results[backend]["gates"] if not g["passed"]] == [
            "max_alert_increase"]
    assert results["two"]["training"]["instance_count"] == 2
    for other in ("one", "local"):
        for metric, value in results["two"]["metrics"].items():
            assert value == pytest.approx(results[other]["metrics"][metric], abs=1e-6), metric
    assert results["two"]["confusion_matrix"] == results["local"]["confusion_matrix"]


def plan_process(path: Path, out: Path, *extra: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "plan", str(path), "--out", str(out), *extra],
        env={**os.environ, "PROMOTION_BOT_XGBOOST_IMAGE": IMAGE, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for_line(lines: queue.Queue[str], text: str) -> None:
    while True:
        line = lines.get(timeout=180)
        assert line, f"the plan ended without saying {text!r}"
        if text in line:
            return


def running_job(known: set[str]) -> str | None:
    new = [name for name, job in jobs().items()
           if name not in known and job["TrainingJobStatus"] == "InProgress"]
    return new[0] if new else None


def test_a_killed_plan_is_rerun_onto_its_running_job(
    production: LocalAWS, tmp_path: Path
) -> None:
    path = tmp_path / PATH
    path.parent.mkdir(parents=True)
    path.write_text(request_text(0.31, 2))
    known = set(jobs())
    with training_runner.held():
        killed = plan_process(path, tmp_path / "killed", "--no-github")
        name = until(lambda: running_job(known), "the plan starts a training job")
        killed.kill()
        killed.communicate(timeout=60)  # a child left holding its pipes would hang here
        assert jobs()[name]["TrainingJobStatus"] == "InProgress"  # the job outlives its plan

        rerun = plan_process(path, tmp_path / "rerun", "--no-github")
        wait_for_line(lines_of(rerun), f"attaching to training job {name}")
    assert rerun.wait(timeout=300) == 0

    plan = read_plan(tmp_path / "rerun")
    assert plan["training"]["job"] == name and plan["training"]["attached"] is True
    assert [n for n in jobs() if n not in known] == [name]  # no second job


def event(path: Path, number: int, sha: str) -> str:
    path.write_text(json.dumps({"pull_request": {"number": number, "head": {"sha": sha}}}))
    return str(path)


def test_a_newer_plan_of_the_pull_request_stops_the_superseded_job(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / PATH
    path.parent.mkdir(parents=True)
    number = github.open_pull(head_sha="a" * 40, author="dana", title="Promote")
    other = github.open_pull(head_sha="c" * 40, author="erin", title="Another")
    known = set(jobs())
    with training_runner.held():
        path.write_text(request_text(0.41, 1))
        first = plan_process(path, tmp_path / "first",
                             GITHUB_EVENT_PATH=event(tmp_path / "a.json", number, "a" * 40))
        first_lines = lines_of(first)
        superseded = until(lambda: running_job(known), "the first plan starts its job")
        path.write_text(request_text(0.42, 1, "exp-job-other-pr"))
        elsewhere = plan_process(path, tmp_path / "other",
                                 GITHUB_EVENT_PATH=event(tmp_path / "c.json", other, "c" * 40))
        other_job = until(lambda: running_job(known | {superseded}), "another PR's job")

        path.write_text(request_text(0.43, 1))  # the pull request's next push
        github.set_head(number, "b" * 40)
        monkeypatch.setenv("GITHUB_EVENT_PATH", event(tmp_path / "b.json", number, "b" * 40))
        newer: dict[str, int] = {}
        thread = threading.Thread(target=lambda: newer.setdefault("code", cli.main(
            ["plan", str(path), "--out", str(tmp_path / "newer")])))
        thread.start()
        until(lambda: jobs()[superseded]["TrainingJobStatus"] in ("Stopping", "Stopped"),
              "the superseded job is stopped")
        wait_for_line(first_lines, "stopped (by a newer plan")
    thread.join(timeout=300)
    assert first.wait(timeout=60) == 2 and elsewhere.wait(timeout=300) == 0
    assert newer["code"] == 0

    states = {name: job["TrainingJobStatus"] for name, job in jobs().items() if name not in known}
    newest = read_plan(tmp_path / "newer")["training"]["job"]
    assert states == {superseded: "Stopped", other_job: "Completed", newest: "Completed"}
    comments = github.comments(number)  # the stopped plan left the comment to the newer one
    assert len(comments) == 1 and "Promotion plan" in comments[0]["body"]
    assert "cannot plan" not in comments[0]["body"]
    assert github.statuses("a" * 40)[-1]["state"] == "error"
    assert github.statuses("b" * 40)[-1]["state"] == "success"


def test_a_tampered_shard_and_a_job_someone_else_configured_are_not_used(
    production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the plan role's write access to training-data/ and to training jobs, someone
    relabels the shard the next plan would reuse and starts the job it would attach to, with
    other hyperparameters: the plan writes the shards again and trains its own job."""
    import io

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from bot.adapters.request_files import load_request
    from bot.core import training_job_spec as spec

    path = tmp_path / PATH
    path.parent.mkdir(parents=True)
    path.write_text(request_text(0.61, 1))
    assert cli.main(["plan", str(path), "--out", str(tmp_path / "first"), "--no-github"]) == 0
    first = read_plan(tmp_path / "first")["training"]

    s3 = boto3.client("s3")
    bucket, _, folder = first["data"].removeprefix("s3://").partition("/")
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=folder)["Contents"]]
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    flipped = io.BytesIO()
    pq.write_table(table.set_column(0, table.schema.field(0), pc.subtract(1, table.column(0))),
                   flipped)
    s3.put_object(Bucket=bucket, Key=key, Body=flipped.getvalue())

    path.write_text(request_text(0.62, 1))
    request, _ = load_request(path)
    name = spec.job_name(T.name, model_key_of(T, request, tmp_path))
    boto3.client("sagemaker").create_training_job(**spec.job_request(
        name=name, image=IMAGE, role_arn=T.training_role_arn,
        hyperparameters=spec.container_hyperparameters(
            {**request.hyperparameters.as_dict(), "eta": 0.9}, training.SEED),
        data_uri=first["data"], output_uri=f"s3://{T.artifacts_bucket}/promotion-bot/"
                                           "training-jobs",
        training=request.training, tags={}))
    capsys.readouterr()

    assert cli.main(["plan", str(path), "--out", str(tmp_path / "second"), "--no-github"]) == 0
    second = read_plan(tmp_path / "second")["training"]
    err = capsys.readouterr().err
    assert f"shard {key.rsplit('/', 1)[1]} has sha256 " in err
    # Its data is the tampered folder, not the one written again: the first difference seen.
    assert f"not attaching to training job {name}: it was not started for this request (its " \
        f"input channels: train {first['data']} (FullyReplicated), not train {second['data']} " \
        "(FullyReplicated))" in err
    assert (second["job"], second["attached"]) == (f"{name}-2", False)
    assert second["data"] != first["data"]
    assert second["data_manifest_sha256"] != first["data_manifest_sha256"]
    job = jobs()[second["job"]]
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == second["data"]
