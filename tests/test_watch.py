"""The watcher: a challenger whose alarm fires is braked (weight 0) at once, the incident is
recorded, its model rejected, and exactly one revert pull request of the config's commit is
opened (a second run does nothing more); GitHub out of reach still brakes; OK and
INSUFFICIENT_DATA never brake."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from conftest import GitRepo, a_plan, request_yaml
from test_pr_effect import folded

from bot import cli
from bot.adapters.aws import artifacts, config_store, endpoint, incidents, registry
from bot.core.domain import EndpointSpec, PlanIdentity, VariantSpec
from bot.core.production_config import ProductionConfig
from bot.core.request import Request
from bot.local.github import LocalGitHub
from bot.settings import Target

CHAMPION = "s3://fraud-detection-models/promotion-bot/models/champion/model.tar.gz"
PULL = 12
ERRORS, LATENCY = "fraud-detection-challenger-error-rate", "fraud-detection-challenger-latency"
REQUEST = "promotion-requests/fraud-detection.yaml"


def at(share: int) -> str:
    return request_yaml("exp-xgboost-1", rollout=(
        "rollout:\n  challenger:\n    override_reason: a test without soak\n"
        f"    traffic_percent: {share}\n"))


@dataclass
class World:
    t: Target
    repo: GitRepo
    remote: Path
    github: LocalGitHub
    merge: str  # the config's commit: the merge of pull request 12
    challenger: str  # the challenger's model

    def alarm(self, name: str, state: str, reason: str = "Threshold Crossed: 2 datapoints "
              "[0.2, 0.3] were greater than the threshold (0.01).") -> None:
        boto3.client("cloudwatch", region_name=self.t.region).set_alarm_state(
            AlarmName=name, StateValue=state, StateReason=reason)

    def weights(self) -> dict[str, int]:
        live = endpoint.read(self.t)
        assert live is not None
        return {v.name: v.weight for v in live.variants}

    def watch(self, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        code = cli.main(["watch", "--repo", str(self.repo.path)])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    def remote_branches(self) -> list[str]:
        out = subprocess.run(["git", "-C", str(self.remote), "for-each-ref", "--format",
                              "%(refname:short)", "refs/heads/"], check=True,
                             capture_output=True, text=True).stdout
        return sorted(out.split())


@pytest.fixture
def world(aws: Target, git_repo: GitRepo, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A challenger at 10 % (pull request 12, merged as a merge commit, applied) beside the
    champion, its two alarms OK, the repository pushed to a bare remote that the local
    GitHub serves."""
    t = aws
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    git_repo.git("remote", "add", "origin", str(remote))
    git_repo.commit({REQUEST: at(1)}, "Challenger at 1 %")
    git_repo.git("checkout", "-q", "-b", "rollout-10")
    head = git_repo.commit({REQUEST: at(10)}, "Rollout challenger to 10%")
    git_repo.git("checkout", "-q", "main")
    git_repo.git("merge", "-q", "--no-ff", "rollout-10", "-m", f"Merge pull request #{PULL}")
    merge = git_repo.head()
    git_repo.git("push", "-q", "origin", "main")

    request = Request.model_validate(yaml.safe_load(at(10)))
    artifact = artifacts.put_model(t, "k" * 64, b"the challenger's model")
    plan = replace(a_plan(request, t.name, artifact=artifact), identity=PlanIdentity(
        head=head, data_versions={}, champion_model_sha256=None,
        production_config_version=None, bot_version="0", signed_at="2026-12-04T10:00:00+00:00"))
    registry.register(t, plan, image=lambda: "xgboost:3.0-5", pull_request=PULL,
                      plan_digest="d" * 64, metrics_uri="s3://b/m.json", metrics_sha256="e" * 64)
    endpoint.reconcile(t, EndpointSpec(t.endpoint_name, (
        VariantSpec("champion", CHAMPION, 90), VariantSpec("challenger", artifact, 10))),
        wait_delay=0)
    config_store.write(t, ProductionConfig(
        target=t.name, algorithm="xgboost", experiment_id="exp-xgboost-1",
        hyperparameters=request.hyperparameters,
        metrics={"accuracy": 0.999}, test_date="2026-12-04T10:00:00+00:00", approvers=["maria"],
        approval_source="github-reviews", commit=merge, pull_request=PULL,
        content_sha256="b" * 64, model_artifact=artifact, challenger_traffic_percent=10))
    cloudwatch = boto3.client("cloudwatch", region_name=t.region)
    for name in (ERRORS, LATENCY):
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/SageMaker", MetricName="ModelLatency",
            Statistic="Average", Period=300, EvaluationPeriods=2, Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="fine")

    with LocalGitHub(repository="acme/fraud-models", remote=remote) as github:
        github.open_pull(PULL, head_sha=head, author="dana", title="Rollout challenger to 10%",
                         head_ref="rollout-10")
        github.merge_pull(PULL, merge)
        monkeypatch.setenv("GITHUB_TOKEN", github.token)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/fraud-models")
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        yield World(t, git_repo, remote, github, merge, artifact)


def _revert_pulls(w: World) -> list[dict[str, Any]]:
    return [p for p in w.github.pulls() if p["head"]["ref"].startswith("promotion-bot/brake-")]


def test_an_alarm_in_alarm_brakes_and_opens_one_revert_pull_request(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.alarm(ERRORS, "ALARM")

    code, said = world.watch(capsys)

    assert code == 0, said
    assert world.weights() == {"champion": 100, "challenger": 0}
    assert f"alarm {ERRORS} in ALARM" in said
    [pull] = _revert_pulls(world)
    assert pull["base"]["ref"] == "main" and pull["user"]["login"] == "promotion-bot[bot]"
    assert ERRORS in pull["body"] and "greater than the threshold" in pull["body"]
    # The alarm's recent history, newest first (DescribeAlarmHistory).
    assert "Alarm updated from OK to ALARM: Threshold Crossed" in pull["body"]
    assert world.merge in pull["body"]
    # Its branch is main with the merge reverted: the request back at 1 %.
    branch = pull["head"]["ref"]
    assert world.remote_branches() == sorted(["main", branch])
    reverted = subprocess.run(["git", "-C", str(world.remote), "show", f"{branch}:{REQUEST}"],
                              check=True, capture_output=True, text=True).stdout
    assert reverted == at(1)
    parent = subprocess.run(["git", "-C", str(world.remote), "rev-parse", f"{branch}~1"],
                            check=True, capture_output=True, text=True).stdout.strip()
    assert parent == world.merge
    # Recorded, rejected, commented.
    found = incidents.read(world.t, world.merge)
    assert found is not None and found.alarm == ERRORS and found.weight_before == 10
    package = registry.find(world.t, world.challenger)
    assert package is not None and package.status == "Rejected"
    assert ERRORS in (registry.describe(world.t, package.arn).approval_description or "")
    [comment] = [c for c in world.github.comments(PULL)]
    assert f"#{pull['number']}" in comment["body"] and ERRORS in comment["body"]


def test_a_second_run_does_nothing_more(world: World,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    world.alarm(ERRORS, "ALARM")
    world.watch(capsys)
    first = incidents.read(world.t, world.merge)
    log_before = len(world.github.request_log())

    code, said = world.watch(capsys)

    assert code == 0, said
    assert "braked before" in said
    assert len(_revert_pulls(world)) == 1
    assert len(world.github.comments(PULL)) == 1
    assert incidents.read(world.t, world.merge) == first
    assert not [r for r in world.github.request_log()[log_before:]
                if r.startswith(("POST", "PATCH")) and r != "POST /graphql"]  # a read


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_ok_and_insufficient_data_never_brake(world: World, state: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    world.alarm(ERRORS, state)
    world.alarm(LATENCY, state)

    code, said = world.watch(capsys)

    assert code == 0, said
    assert world.weights() == {"champion": 90, "challenger": 10}
    assert f"{ERRORS} {state}" in said
    assert incidents.read(world.t, world.merge) is None
    assert _revert_pulls(world) == [] and world.remote_branches() == ["main"]


def test_github_out_of_reach_still_brakes_and_the_next_run_opens_the_pull_request(
        world: World, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import settings

    world.alarm(LATENCY, "ALARM")
    with LocalGitHub() as gone:
        unreachable = gone.url
    monkeypatch.setenv("GITHUB_API_URL", unreachable)
    monkeypatch.setenv("PROMOTION_BOT_GITHUB_ATTEMPTS", "1")
    settings.cache_clear()

    code, said = world.watch(capsys)

    assert code == 1
    assert world.weights() == {"champion": 100, "challenger": 0}
    assert "could not open the revert pull request" in said
    assert world.github.token not in said
    assert _revert_pulls(world) == []

    monkeypatch.setenv("GITHUB_API_URL", world.github.url)
    code, said = world.watch(capsys)

    assert code == 0, said
    [pull] = _revert_pulls(world)
    assert LATENCY in pull["body"]
    assert len(world.github.comments(PULL)) == 1


def test_a_challenger_at_zero_is_not_braked(world: World,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Without traffic there is nothing to brake: no incident, no pull request."""
    endpoint.brake(world.t, wait_delay=0)
    world.alarm(ERRORS, "ALARM")

    code, said = world.watch(capsys)

    assert code == 0, said
    assert incidents.read(world.t, world.merge) is None and _revert_pulls(world) == []


def test_plan_shows_the_brake_until_the_revert_is_applied(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.core import incident
    from bot.flows.plan import braked
    from bot.report.plan_comment import render_comment

    config = config_store.read(world.t)
    assert braked(world.t, config, endpoint.read(world.t)) is None  # nothing braked yet
    world.alarm(ERRORS, "ALARM")
    world.watch(capsys)

    found = braked(world.t, config, endpoint.read(world.t))
    assert found is not None
    request = Request.model_validate(yaml.safe_load(at(50)))
    # A stored plan's old brake note gives way to the brake that stands now.
    old = (f"{incident.BRAKE_NOTE} at 2020-01-01T00:00:00+00:00: alarm x in ALARM", "kept")
    plan = replace(a_plan(request), notes=incident.with_brake(old, found))
    comment = render_comment(plan)
    [line] = [line.replace("\\", "") for line in comment.splitlines()
              if incident.BRAKE_NOTE in line]  # as GitHub shows it: escapes removed
    assert found.braked_at in line and ERRORS in line and found.branch in line
    assert "2020-01-01" not in comment and "kept" in comment
    assert len(folded(comment)) <= 60  # one screen, as every plan comment
    # Once the revert is applied (the challenger gone with the config's commit), no note.
    endpoint.reconcile(world.t, EndpointSpec(world.t.endpoint_name, (
        VariantSpec("champion", CHAMPION, 100),)), wait_delay=0)
    assert braked(world.t, config, endpoint.read(world.t)) is None


def test_a_target_that_cannot_be_watched_never_keeps_another_from_its_brake(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A request file whose target has no bucket (its config cannot be read) sorts first: it is
    said in one line, the challenger of the other target is still braked, the exit is 2."""
    world.repo.commit({"promotion-requests/aaa.yaml": at(1)}, "Another target")
    world.alarm(ERRORS, "ALARM")

    code, said = world.watch(capsys)

    assert code == 2, said
    assert world.weights() == {"champion": 100, "challenger": 0}
    [broken] = [line for line in said.splitlines() if line.startswith("aaa:")]
    assert "could not watch" in broken and "bucket aaa-config does not exist" in broken
    assert "Traceback" not in said
    assert len(_revert_pulls(world)) == 1
