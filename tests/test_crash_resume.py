"""An apply killed half-way through writing SSM, then resumed: the backup it names is the one
taken before its first write, and the outcome lists every change.

The apply runs in its own process against the local AWS server; the fault plan holds its
second hyperparameter write until it is killed with SIGKILL, as a runner can be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import pytest
from conftest import GitRepo, put_plan, request_yaml

from bot import cli
from bot.adapters.aws import artifacts, lock, ssm
from bot.local.aws_server import LocalAWS
from bot.local.bootstrap import create_signing_key
from bot.local.faults import FaultPlan, Injector, Rule
from bot.settings import Target, target

PATH = "promotion-requests/fraud-detection.yaml"
BEFORE = request_yaml("exp-xgboost-1", eta=0.1, max_depth=7)
AFTER = request_yaml("exp-xgboost-2", eta=0.2, max_depth=6)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAWS, Target]]:
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_RUN_ID",
                 "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    t = target("fraud-detection")
    with LocalAWS() as aws:
        s3 = boto3.client("s3")
        for bucket in (t.config_bucket, t.artifacts_bucket, t.data_bucket):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=t.config_bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
        create_signing_key(t)
        yield aws, t


def wait_for(condition: object, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def second_promotion(repo: GitRepo, t: Target) -> tuple[str, str]:
    """exp-xgboost-1 merged, planned and applied; then exp-xgboost-2 merged and planned (as
    the plan job plans every pushed head) against what production serves now. The two
    commits."""
    start = repo.head()
    first = repo.commit({PATH: BEFORE}, "Promote exp-xgboost-1")
    put_plan(t, BEFORE, head=first)
    assert cli.main(["apply", "--repo", str(repo.path), "--before", start,
                     "--after", first]) == 0
    second = repo.commit({PATH: AFTER}, "Promote exp-xgboost-2")
    put_plan(t, AFTER, head=second)
    return first, second


@contextlib.contextmanager
def apply_held(aws: LocalAWS, repo: GitRepo, pushed: tuple[str, str], rule: Rule
               ) -> Iterator[tuple[Injector, subprocess.Popen[str]]]:
    """``apply`` of the range ``pushed`` in its own process, held at the AWS call ``rule``
    holds; on leaving, the process is killed if it still runs and the fault plan ends."""
    injector = aws.inject(FaultPlan(rules=(rule,)))
    assert injector is not None
    runner = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "apply", "--repo", str(repo.path),
         "--before", pushed[0], "--after", pushed[1]], env=dict(os.environ),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: injector.injected() or runner.poll() is not None, "the held call")
        assert runner.poll() is None, "apply ended before the held call"
        yield injector, runner
    finally:
        if runner.poll() is None:
            runner.kill()  # SIGKILL, as a runner can be killed
            runner.wait()
        injector.release()
        aws.inject(None)


def test_a_resumed_apply_names_the_backup_taken_before_its_first_write(
        server: tuple[LocalAWS, Target], git_repo: GitRepo,
        capsys: pytest.CaptureFixture[str]) -> None:
    aws, t = server
    first, second = second_promotion(git_repo, t)
    before = ssm.read(t)
    assert before["max_depth"] == "7"

    # The backup is put #1, eta #2, max_depth #3: hold #3 until the process is killed.
    with apply_held(aws, git_repo, (first, second), Rule(
            service="ssm", operation="PutParameter", kind="server-error", skip=2, times=1,
            delay=120)):
        pass  # killed while its third write waits
    half = ssm.read(t)
    assert (half["eta"], half["max_depth"]) == ("0.2", "7")  # half written
    record = artifacts.get_apply_record(t, second)
    assert record is not None and record.status == "in-progress"
    [taken] = record.backup_keys[-1:]
    assert ssm.load_backup(t, taken) == before

    # The killed run's lock stays until someone breaks it.
    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", first]) == 1
    assert "promotion-bot break-lock fraud-detection" in capsys.readouterr().err
    assert cli.main(["break-lock", "fraud-detection"]) == 0
    assert lock.holder(t) is None
    backups = ssm.backups(t)
    capsys.readouterr()

    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", first]) == 0

    out = capsys.readouterr().out
    assert f"backup: {taken}" in out
    assert "/fraud-detection/hyperparameters/eta: 0.1 → 0.2" in out
    assert "/fraud-detection/hyperparameters/max_depth: 7 → 6" in out  # written by both runs
    assert ssm.backups(t) == backups  # no backup of the half-written state
    assert ssm.read(t)["max_depth"] == "6"
    done = artifacts.get_apply_record(t, second)
    assert done is not None and done.status == "complete" and done.detail("backup_key") == taken

    assert cli.main(["rollback-parameters", taken]) == 0
    assert ssm.read(t) == before


def test_a_sigtermed_apply_stops_after_its_current_call_and_releases_the_lock(
        server: tuple[LocalAWS, Target], git_repo: GitRepo) -> None:
    aws, t = server
    first, second = second_promotion(git_repo, t)

    # Hold the first hyperparameter write: the runner is cancelled while it waits.
    with apply_held(aws, git_repo, (first, second), Rule(
            service="ssm", operation="PutParameter", kind="slow", skip=1, times=1,
            delay=120)) as (injector, runner):
        assert lock.holder(t) is not None
        runner.send_signal(signal.SIGTERM)
        injector.release()  # the current call ends; the next write is not made
        _, err = runner.communicate(timeout=60)
    assert runner.returncode == 143, err
    assert "SIGTERM received" in err and err.count("\n") == 1
    assert lock.holder(t) is None  # released: the next apply need not break it
    record = artifacts.get_apply_record(t, second)
    assert record is not None and record.status == "failed"
    assert ssm.read(t)["max_depth"] == "7"  # stopped before the next write

    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", first]) == 0
    assert ssm.read(t)["max_depth"] == "6"
    done = artifacts.get_apply_record(t, second)
    assert done is not None and done.finished
    assert {c.key.rsplit("/", 1)[-1] for c in done.changes if c.target == "ssm"} == {
        "eta", "max_depth"}
