"""AWS in trouble: throttling, a silent endpoint, throttled invocations, with faults injected
into the local stand-ins; the bot converges or stops with one clear line."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import FEATURES, GitRepo, compare_sampled, request_yaml, small_frame, small_params

from bot import cli
from bot.adapters.aws import endpoint, ssm
from bot.core import training
from bot.core.domain import EndpointSpec, VariantSpec
from bot.local import faults
from bot.local.faults import FaultPlan, Rule
from bot.settings import Target, settings

PATH = "promotion-requests/fraud-detection.yaml"
FIRST = request_yaml("exp-xgboost-1", eta=0.1, max_depth=7)


@pytest.fixture(autouse=True)
def no_github_context(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


def test_throttled_writes_during_apply_are_waited_out(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(FIRST)
    git_repo.commit({PATH: FIRST}, "Promote")
    # Three throttles in a row stopped reconcile with botocore's default policy.
    plan = FaultPlan(rules=(Rule(service="ssm", operation="PutParameter", kind="throttle",
                                 times=3),
                            Rule(service="s3", operation="PutObject", kind="server-error",
                                 times=2)))

    with faults.injected(plan) as injector:
        code = cli.main(["apply", "--repo", str(git_repo.path)])

    assert code == 0, capsys.readouterr().err
    assert len(injector.injected()) == 5
    assert ssm.read(aws)["max_depth"] == "7" and len(ssm.backups(aws)) == 1


class SilentServer:
    """Accepts connections and never answers: an AWS endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.sock.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent(monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    server = SilentServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "PROMOTION_BOT_AWS_CONNECT_TIMEOUT_SECONDS": "0.5",
                        "PROMOTION_BOT_AWS_READ_TIMEOUT_SECONDS": "0.5"}.items():
        monkeypatch.setenv(name, value)
    yield server
    server.close()


def test_a_silent_aws_fails_apply_with_one_line_after_two_tries(
        silent: SilentServer, git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    git_repo.commit({PATH: FIRST}, "Promote")

    code = cli.main(["apply", "--repo", str(git_repo.path)])

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("promotion-bot apply: AWS failed during apply: AWS did not answer in "
                          f'time (Read timeout on endpoint URL: "{silent.url}/')
    assert "tried 2x with a 0.5 s connect and 0.5 s read timeout" in err
    assert "PROMOTION_BOT_AWS_READ_TIMEOUT_SECONDS" in err
    assert len(silent.accepted) == 2  # one call, tried twice, and nothing after it


def test_a_silent_aws_fails_plan_with_one_line(
        silent: SilentServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fraud-detection.yaml"
    path.write_text(FIRST)

    code = cli.main(["plan", str(path), "--no-github", "--out", str(tmp_path / "out")])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("promotion-bot plan: AWS request failed: AWS did not answer in "
                              "time")


@pytest.fixture
def two_variants(aws: Target) -> tuple[Any, Any]:
    """The endpoint serving two small real models half and half; the test set."""
    train, test = small_frame(300, 1), small_frame(30, 2)
    s3 = boto3.client("s3", region_name=aws.region)
    variants = []
    for name, (rounds, depth) in (("champion", (4, 2)), ("challenger", (10, 3))):
        s3.put_object(Bucket=aws.artifacts_bucket, Key=f"{name}/model.tar.gz",
                      Body=training.package_model(training.train(
                          small_params(rounds, depth), train, "Class")))
        variants.append(VariantSpec(name, f"s3://{aws.artifacts_bucket}/{name}/model.tar.gz",
                                    50))
    endpoint.reconcile(aws, EndpointSpec(aws.endpoint_name, tuple(variants)), wait_delay=0)
    return test[FEATURES], test["Class"].to_numpy()


def test_throttled_invocations_are_retried_not_counted_as_model_errors(
        aws: Target, two_variants: tuple[Any, Any]) -> None:
    features, labels = two_variants
    plan = FaultPlan(rules=(Rule(service="sagemaker-runtime", operation="InvokeEndpoint",
                                 kind="throttle", times=2),))

    with faults.injected(plan) as injector:
        c = compare_sampled(aws, features, labels, 0.5, legit_records=3)

    assert len(injector.injected()) == 2
    assert [(v.errors, v.throttled) for v in c.variants] == [(0, 0), (0, 0)]
    assert all(v.records >= 3 for v in c.variants)
    assert "no answer" not in c.verdict and "throttled" not in c.verdict


def test_invocations_throttled_past_the_retries_are_counted_apart(
        aws: Target, two_variants: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    features, labels = two_variants
    monkeypatch.setenv("PROMOTION_BOT_AWS_MAX_ATTEMPTS", "2")
    settings.cache_clear()  # read since the fixture set the endpoint up
    plan = FaultPlan(rules=(Rule(service="sagemaker-runtime", operation="InvokeEndpoint",
                                 kind="throttle"),))

    with faults.injected(plan):
        c = compare_sampled(aws, features, labels, 0.5, legit_records=1)

    n = c.variants[1].records
    assert [(v.errors, v.throttled) for v in c.variants] == [(0, n), (0, n)]
    assert (f"{n} of {n} records sent to challenger were throttled by SageMaker (its request "
            "rate, not the model) and are left out.") in c.verdict
    assert "no answer" not in c.verdict


SECOND = request_yaml("exp-xgboost-2", eta=0.2, max_depth=8, rollout=(
    "rollout:\n  challenger:\n    traffic_percent: 100\n"
    "    override_reason: promoted straight away\n"))


@pytest.mark.usefixtures("endpoint_polls_fast")
def test_lost_answers_to_the_backup_and_a_clean_up_delete_change_nothing_twice(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(FIRST)
    git_repo.commit({PATH: FIRST}, "Promote")
    assert cli.main(["apply", "--repo", str(git_repo.path)]) == 0
    store_plan(SECOND)
    git_repo.commit({PATH: SECOND}, "Promote exp-xgboost-2")
    backups = ssm.backups(aws)
    # The backup is made and its answer lost, so botocore puts it again; the clean-up's
    # deletes are made and their answers lost, so botocore deletes them again.
    plan = FaultPlan(rules=(
        Rule(service="ssm", operation="PutParameter", kind="server-error", after=True,
             times=1),
        Rule(service="sagemaker", operation="DeleteModel", kind="server-error", after=True,
             times=1),
        Rule(service="sagemaker", operation="DeleteEndpointConfig", kind="server-error",
             after=True, times=1)))
    capsys.readouterr()
    with faults.injected(plan) as injector:
        code = cli.main(["apply", "--repo", str(git_repo.path)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert [i.operation for i in injector.injected()] == [
        "PutParameter", "DeleteEndpointConfig", "DeleteModel"]
    [taken] = [k for k in ssm.backups(aws) if k not in backups]  # one backup, not two
    assert f"backup: {taken}" in out and "delete model" in out
    assert ssm.load_backup(aws, taken)["max_depth"] == "7"
