"""Apply on merge, on a real git repository and moto: the promotion, re-runs, failures, revert."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from conftest import GitRepo, request_yaml

from bot import cli
from bot.apply import Outcome, apply, describe
from bot.aws import artifacts, config_store, endpoint, lock, pipeline, ssm
from bot.errors import LockHeld, NotApproved, NotPlanned
from bot.github import GitHubHost
from bot.local_github import LocalGitHub
from bot.settings import Target, target

PATH = "promotion-requests/fraud-detection.yaml"
PIPELINE = "rollout:\n  pipeline: true\n"
CHALLENGER = "rollout:\n  challenger:\n    traffic_percent: 10\n"
FIRST = request_yaml("exp-xgboost-1", eta=0.1, extra="  gamma: 1.0\n", rollout=PIPELINE)
SECOND = request_yaml("exp-xgboost-2", eta=0.2, max_depth=8)
SECOND_AS_CHALLENGER = request_yaml("exp-xgboost-2", eta=0.2, max_depth=8, rollout=CHALLENGER)
FIRST_SSM = {"objective": "binary:logistic", "num_round": "100", "max_depth": "6",
             "eta": "0.1", "subsample": "0.8", "colsample_bytree": "0.8", "gamma": "1.0"}
SECOND_SSM = {**FIRST_SSM, "eta": "0.2", "max_depth": "8"}
del SECOND_SSM["gamma"]


@pytest.fixture(autouse=True)
def no_github_context(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def endpoint_polls_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's endpoint is Creating for one poll; don't wait the real 15 s between polls."""
    monkeypatch.setattr(endpoint, "reconcile", functools.partial(endpoint.reconcile,
                                                                 wait_delay=0.01))


def merge(repo: GitRepo, text: str | None, message: str) -> tuple[str, str]:
    """Commit ``text`` as the request file (None deletes it); return the pushed range."""
    before = repo.head()
    return before, repo.commit({PATH: text}, message)


def apply_range(repo: GitRepo, pushed: tuple[str, str], host: GitHubHost | None = None
                ) -> Outcome:
    outcomes = apply(repo.path, pushed[0], pushed[1], host)
    assert len(outcomes) == 1
    return outcomes[0]


def state(t: Target) -> dict[str, Any]:
    """Everything apply may touch, to compare before and after."""
    s3 = boto3.client("s3", region_name=t.region)
    objects = {
        bucket: sorted((o["Key"], o["ETag"]) for o in s3.list_objects_v2(
            Bucket=bucket).get("Contents", []))
        for bucket in (t.config_bucket, t.artifacts_bucket)
    }
    sfn = boto3.client("stepfunctions", region_name=t.region)
    executions = sfn.list_executions(stateMachineArn=pipeline.state_machine_arn(t))
    return {"ssm": ssm.read(t), "backups": ssm.backups(t), "objects": objects,
            "executions": sorted(e["name"] for e in executions["executions"]),
            "endpoint": endpoint.read(t)}


@pytest.fixture
def first(git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]], aws: Target
          ) -> tuple[Outcome, dict[str, Any]]:
    """The first promotion merged and applied; returns its outcome and plan."""
    plan = store_plan(FIRST)
    return apply_range(git_repo, merge(git_repo, FIRST, "Promote exp-xgboost-1")), plan


def test_first_apply_writes_parameters_config_backup_and_execution(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo) -> None:
    outcome, plan = first
    assert ssm.read(aws) == FIRST_SSM
    assert outcome.backup_key in ssm.backups(aws)
    assert ssm.load_backup(aws, outcome.backup_key) == {}  # nothing was there before
    config = config_store.read(aws)
    assert config is not None
    assert (config.experiment_id, config.commit, config.content_sha256, config.model_artifact) \
        == ("exp-xgboost-1", git_repo.head(), plan["content_sha256"], plan["artifact"])
    assert config.approvers == ["Dana Scientist <dana@example.com>"]
    assert (outcome.approval.source, config.approval_source) == ("commit-author",) * 2
    assert outcome.execution_arn == pipeline.find_execution(
        aws, f"fraud-detection-{git_repo.head()[:12]}-{plan['content_sha256'][:12]}")
    assert outcome.execution_status in ("RUNNING", "SUCCEEDED")
    assert {c.target for c in outcome.changes} == {"ssm", "s3-config", "pipeline", "endpoint"}
    assert not outcome.noop and not outcome.drift
    assert [(v.name, v.model_data_url, v.weight) for v in outcome.variants] == [
        ("champion", plan["artifact"], 100)]
    record = artifacts.get_apply_record(aws, git_repo.head())
    assert record is not None and record["status"] == "complete"
    assert record["backup_keys"] == [outcome.backup_key]
    text = describe(outcome)
    assert "ssm       /fraud-detection/hyperparameters/eta: (absent) → 0.1" in text
    assert f"backup: {outcome.backup_key}" in text and outcome.execution_arn in text
    assert lock.holder(aws) is None


def test_second_apply_of_the_same_range_changes_nothing(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo) -> None:
    before = state(aws)
    again = apply_range(git_repo, (f"{git_repo.head()}~1", git_repo.head()))
    assert again.noop and again.changes == () and again.backup_key is None
    assert again.execution_arn == first[0].execution_arn
    assert state(aws) == before
    assert describe(again).startswith(
        f"fraud-detection: no changes: production already matches {PATH} at "
        f"{git_repo.head()[:12]}")


def _fail_once(monkeypatch: pytest.MonkeyPatch, module: Any, name: str,
               partial: bool = False) -> None:
    real = getattr(module, name)
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            return real(*args, **kwargs)
        if partial:  # SSM write dies after the first parameter
            t, desired = args
            first_name = sorted(desired)[0]
            real(t, {**ssm.read(t), first_name: desired[first_name]})
        raise RuntimeError(f"injected failure in {module.__name__}.{name}")

    monkeypatch.setattr(module, name, failing)


@pytest.mark.parametrize(("module", "name", "partial"), [
    (ssm, "backup", False), (ssm, "write", False), (ssm, "write", True),
    (config_store, "write", False), (pipeline, "start", False), (endpoint, "reconcile", False),
    (artifacts, "put_apply_record", False),
], ids=["ssm-backup", "ssm-write", "ssm-write-half", "config", "pipeline", "endpoint",
        "apply-record"])
def test_failure_half_way_is_completed_by_the_next_run(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        module: Any, name: str, partial: bool) -> None:
    text = request_yaml("exp-xgboost-2", eta=0.2, max_depth=8, rollout=PIPELINE)
    plan = store_plan(text)
    pushed = merge(git_repo, text, "Promote exp-xgboost-2")
    backups_before = ssm.backups(aws)
    _fail_once(monkeypatch, module, name, partial)

    with pytest.raises(RuntimeError, match="injected failure"):
        apply(git_repo.path, *pushed, None)
    assert lock.holder(aws) is None

    outcome = apply_range(git_repo, pushed)
    assert ssm.read(aws) == SECOND_SSM
    config = config_store.read(aws)
    assert config is not None and config.experiment_id == "exp-xgboost-2"
    assert config.commit == pushed[1]
    assert pipeline.find_execution(
        aws, f"fraud-detection-{pushed[1][:12]}-{plan['content_sha256'][:12]}")
    assert not outcome.drift  # our own unfinished work is not somebody's hand
    backups = ssm.backups(aws)
    assert backups[:len(backups_before)] == backups_before  # no backup lost
    assert ssm.load_backup(aws, outcome.backup_key or "") in (FIRST_SSM, _half(partial))
    assert FIRST_SSM in [ssm.load_backup(aws, k) for k in backups]
    record = artifacts.get_apply_record(aws, pushed[1])
    assert record is not None and record["status"] == "complete"
    assert set(record["backup_keys"]) == set(backups) - set(backups_before)
    assert apply_range(git_repo, pushed).noop


def _half(partial: bool) -> dict[str, str]:
    return {**FIRST_SSM, "colsample_bytree": "0.8"} if partial else FIRST_SSM


def test_revert_restores_previous_parameters_and_config(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., dict[str, Any]]) -> None:
    first_config = config_store.read(aws)
    store_plan(SECOND)
    promoted = merge(git_repo, SECOND, "Promote exp-xgboost-2")
    apply_range(git_repo, promoted)
    assert ssm.read(aws) == SECOND_SSM
    models = state(aws)["objects"][aws.artifacts_bucket]

    revert = git_repo.revert(promoted[1])
    outcome = apply_range(git_repo, (promoted[1], revert))

    assert ssm.read(aws) == FIRST_SSM
    assert ssm.load_backup(aws, outcome.backup_key or "") == SECOND_SSM
    config = config_store.read(aws)
    assert config is not None and first_config is not None
    same = ("experiment_id", "hyperparameters", "content_sha256", "model_artifact", "metrics",
            "test_date", "champion")
    assert {f: getattr(config, f) for f in same} == {f: getattr(first_config, f) for f in same}
    assert config.commit == revert
    trained = [k for k, _ in state(aws)["objects"][aws.artifacts_bucket] if "/models/" in k]
    assert trained == [k for k, _ in models if "/models/" in k]  # nothing retrained


def test_unplanned_content_is_refused_and_nothing_changes(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    churn = target("churn")
    boto3.client("s3").create_bucket(Bucket=churn.artifacts_bucket)
    other = request_yaml("exp-churn-1")
    store_plan(other, t=churn)  # the other target's file is fine, and still nothing may change
    before = state(aws)
    start = git_repo.head()
    git_repo.commit({PATH: SECOND, "promotion-requests/churn.yaml": other}, "Two at once")
    with pytest.raises(NotPlanned, match=r"was never planned, no s3://fraud-detection-models/"
                                         r"promotion-bot/plans/[0-9a-f]{64}/plan\.json"):
        apply(git_repo.path, start, "HEAD", None)

    code = cli.main(["apply", "--repo", str(git_repo.path), "--before", start])
    assert code == 1
    assert "nothing was applied" in capsys.readouterr().err
    assert state(aws) == before


def test_failed_plan_is_refused(aws: Target, git_repo: GitRepo,
                                store_plan: Callable[..., dict[str, Any]]) -> None:
    store_plan(FIRST, passed=False)
    with pytest.raises(NotPlanned, match="did not pass its gates"):
        apply_range(git_repo, merge(git_repo, FIRST, "Promote"))
    assert ssm.read(aws) == {} and config_store.read(aws) is None


def test_apply_refused_while_another_holds_the_lock(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(FIRST)
    merge(git_repo, FIRST, "Promote")
    with lock.acquire(aws, "carol (workflow run 7)"):
        assert cli.main(["apply", "--repo", str(git_repo.path)]) == 1
        assert "being applied by carol (workflow run 7) since" in capsys.readouterr().err
        with pytest.raises(LockHeld):
            apply(git_repo.path, "HEAD~1", "HEAD", None)
    assert ssm.read(aws) == {} and config_store.read(aws) is None and ssm.backups(aws) == []
    assert artifacts.get_apply_record(aws, git_repo.head()) is None


def test_renamed_request_file_keeps_its_target(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo) -> None:
    start = git_repo.head()
    git_repo.git("mv", PATH, PATH.replace(".yaml", ".yml"))
    git_repo.git("commit", "-q", "-m", "Rename")
    outcome = apply_range(git_repo, (start, git_repo.head()))
    assert not outcome.retired and outcome.path.endswith(".yml")
    assert ssm.read(aws) == FIRST_SSM


def test_deleted_request_retires_the_challenger_and_keeps_the_champion(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., dict[str, Any]]) -> None:
    champion = first[1]["artifact"]
    challenger = store_plan(SECOND_AS_CHALLENGER)["artifact"]
    applied = apply_range(git_repo, merge(git_repo, SECOND_AS_CHALLENGER, "Challenge"))
    assert [(v.name, v.model_data_url, v.weight) for v in applied.variants] == [
        ("champion", champion, 90), ("challenger", challenger, 10)]

    outcome = apply_range(git_repo, merge(git_repo, None, "Retire the challenger"))

    assert outcome.retired and not outcome.noop
    assert [(v.name, v.model_data_url, v.weight) for v in outcome.variants] == [
        ("champion", champion, 100)]
    config = config_store.read(aws)
    assert config is not None and config.challenger_traffic_percent is None
    assert config.champion is not None and config.champion.model_artifact == champion
    assert ssm.read(aws) == SECOND_SSM  # parameters stay as the last request left them
    assert "challenger retired" in describe(outcome)


def test_hand_change_is_overwritten_and_reported_as_drift(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., dict[str, Any]]) -> None:
    boto3.client("ssm", region_name=aws.region).put_parameter(
        Name="/fraud-detection/hyperparameters/eta", Value="0.9", Type="String", Overwrite=True)

    again = apply_range(git_repo, (f"{git_repo.head()}~1", git_repo.head()))
    assert [(c.key, c.before, c.after) for c in again.drift] == [
        ("/fraud-detection/hyperparameters/eta", "0.9", "0.1")]
    assert ssm.read(aws) == FIRST_SSM
    assert ssm.load_backup(aws, again.backup_key or "")["eta"] == "0.9"
    assert "DRIFT /fraud-detection/hyperparameters/eta: live 0.9" in describe(again)

    boto3.client("ssm", region_name=aws.region).put_parameter(
        Name="/fraud-detection/hyperparameters/subsample", Value="0.5", Type="String",
        Overwrite=True)
    store_plan(SECOND)
    outcome = apply_range(git_repo, merge(git_repo, SECOND, "Promote exp-xgboost-2"))
    assert {c.key: c.drift for c in outcome.changes if c.target == "ssm"} == {
        "/fraud-detection/hyperparameters/eta": False,
        "/fraud-detection/hyperparameters/gamma": False,
        "/fraud-detection/hyperparameters/max_depth": False,
        "/fraud-detection/hyperparameters/subsample": True}
    assert ssm.read(aws) == SECOND_SSM


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalGitHub]:
    with LocalGitHub(repository="acme/fraud-models") as server:
        yield server


def test_approvers_are_recorded_and_the_outcome_commented(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]],
        github: LocalGitHub) -> None:
    host = GitHubHost(github.token, github.repository, github.url)
    plan = store_plan(FIRST)
    pushed = merge(git_repo, FIRST, "Promote exp-xgboost-1 (#1)")
    pr = github.open_pull(head_sha=pushed[1], author="dana", title="Promote exp-xgboost-1")
    github.review(pr, "bob", "APPROVED")
    github.merge_pull(pr, pushed[1])

    outcome = apply_range(git_repo, pushed, host)

    config = config_store.read(aws)
    assert config is not None and config.approvers == ["bob"]
    assert (config.approval_source, config.pull_request) == ("github-reviews", pr)
    comments = github.comments(pr)
    assert len(comments) == 1
    body = comments[0]["body"]
    assert "<!-- promotion-bot:apply:fraud-detection -->" in body
    assert str(outcome.backup_key) in body and str(outcome.execution_arn) in body
    assert plan["content_sha256"] == config.content_sha256
    statuses = github.statuses(pushed[1])
    assert [(s["context"], s["state"]) for s in statuses][-1] == (
        "promotion-bot/apply", "success")

    assert apply_range(git_repo, pushed, host).noop
    assert len(github.comments(pr)) == 1 and github.comments(pr)[0]["body"] == body


def test_merge_without_approval_is_refused_on_github(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]],
        github: LocalGitHub) -> None:
    host = GitHubHost(github.token, github.repository, github.url)
    store_plan(FIRST)
    pushed = merge(git_repo, FIRST, "Promote")
    pr = github.open_pull(head_sha=pushed[1], author="dana", title="Promote")
    github.merge_pull(pr, pushed[1])
    with pytest.raises(NotApproved, match=f"pull request #{pr} .* has no approving review"):
        apply_range(git_repo, pushed, host)
    assert ssm.read(aws) == {}


def test_failure_is_reported_on_the_pull_request(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]],
        github: LocalGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    host = GitHubHost(github.token, github.repository, github.url)
    store_plan(FIRST)
    pushed = merge(git_repo, FIRST, "Promote")
    pr = github.open_pull(head_sha=pushed[1], author="dana", title="Promote")
    github.review(pr, "bob", "APPROVED")
    github.merge_pull(pr, pushed[1])
    _fail_once(monkeypatch, config_store, "write")
    with pytest.raises(RuntimeError):
        apply_range(git_repo, pushed, host)
    assert github.statuses(pushed[1])[-1]["state"] == "failure"
    assert "stopped" in github.comments(pr)[0]["body"]

    apply_range(git_repo, pushed, host)
    assert github.statuses(pushed[1])[-1]["state"] == "success"
    assert "promotion-bot applied" in github.comments(pr)[0]["body"]


def test_cli_apply_defaults_to_the_last_commit(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(FIRST)
    merge(git_repo, FIRST, "Promote")
    assert cli.main(["apply", "--repo", str(git_repo.path)]) == 0
    out = capsys.readouterr().out
    assert "approved by: Dana Scientist <dana@example.com> (merge commit author" in out
    assert "eta: (absent) → 0.1" in out and "backup: /fraud-detection/backups/" in out
    assert cli.main(["apply", "--repo", str(git_repo.path)]) == 0
    assert "no changes: production already matches" in capsys.readouterr().out
    git_repo.commit({"README.md": "other\n"}, "Docs")
    assert cli.main(["apply", "--repo", str(git_repo.path)]) == 0
    assert "no request files changed" in capsys.readouterr().out


def test_rollback_parameters_restores_a_backup(
        first: tuple[Outcome, dict[str, Any]], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(SECOND)
    second = apply_range(git_repo, merge(git_repo, SECOND, "Promote exp-xgboost-2"))
    capsys.readouterr()
    assert cli.main(["rollback-parameters", str(second.backup_key)]) == 0
    out = capsys.readouterr().out
    assert ssm.read(aws) == FIRST_SSM
    safety = ssm.backups(aws)[-1]
    assert f"backed up in {safety}" in out
    assert ssm.load_backup(aws, safety) == SECOND_SSM
    assert json.loads(json.dumps(ssm.read(aws))) == FIRST_SSM
