"""Apply on merge, on a real git repository and moto: the promotion, re-runs, failures, revert."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from conftest import TARGET, GitRepo, request_yaml

from bot import cli
from bot.adapters import git
from bot.adapters.aws import artifacts, config_store, endpoint, lock, pipeline, ssm
from bot.adapters.github import GitHubHost
from bot.adapters.request_files import parse_request_text
from bot.core.desired_state import execution_name
from bot.core.domain import Outcome, Plan
from bot.errors import LockHeld, NotApproved, NotPlanned
from bot.flows.apply import apply
from bot.local.bootstrap import create_signing_key
from bot.local.github import LocalGitHub
from bot.report.apply_outcome import describe
from bot.settings import Target, target

PATH = "promotion-requests/fraud-detection.yaml"
PIPELINE = "rollout:\n  pipeline: true\n"
CHALLENGER = ("rollout:\n  challenger:\n    traffic_percent: 10\n"
              "    override_reason: these tests start the challenger at 10 %\n")
FIRST = request_yaml("exp-xgboost-1", eta=0.1, extra="  gamma: 1.0\n", rollout=PIPELINE)
SECOND = request_yaml("exp-xgboost-2", eta=0.2, max_depth=8)
SECOND_AS_CHALLENGER = request_yaml("exp-xgboost-2", eta=0.2, max_depth=8, rollout=CHALLENGER)
FIRST_SSM = {"objective": "binary:logistic", "num_round": "100", "max_depth": "6",
             "eta": "0.1", "subsample": "0.8", "colsample_bytree": "0.8", "gamma": "1.0"}
SECOND_SSM = {**FIRST_SSM, "eta": "0.2", "max_depth": "8"}
del SECOND_SSM["gamma"]


pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


def merge(repo: GitRepo, text: str | None, message: str) -> tuple[str, str]:
    """Commit ``text`` as the request file (None deletes it); return the pushed range."""
    before = repo.head()
    return before, repo.commit({PATH: text}, message)


def retraining(t: Target, repo: GitRepo, commit: str) -> str:
    """The execution a commit that changed the hyperparameters starts."""
    path = f"promotion-requests/{TARGET}.yaml"
    request, _ = parse_request_text(git.show(repo.path, commit, path) or "", path)
    return execution_name(t, commit, request)


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
def first(git_repo: GitRepo, store_plan: Callable[..., Plan], aws: Target
          ) -> tuple[Outcome, Plan]:
    """The first promotion merged and applied; returns its outcome and plan."""
    plan = store_plan(FIRST)
    return apply_range(git_repo, merge(git_repo, FIRST, "Promote exp-xgboost-1")), plan


def test_first_apply_writes_parameters_config_backup_and_execution(
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo) -> None:
    outcome, plan = first
    assert ssm.read(aws) == FIRST_SSM
    assert outcome.backup_key in ssm.backups(aws)
    assert ssm.load_backup(aws, outcome.backup_key) == {}  # nothing was there before
    config = config_store.read(aws)
    assert config is not None
    assert (config.experiment_id, config.commit, config.content_sha256, config.model_artifact) \
        == ("exp-xgboost-1", git_repo.head(), plan.content_sha256, plan.artifact)
    assert config.approvers == ["Dana Scientist <dana@example.com>"]
    assert (outcome.approval.source, config.approval_source) == ("commit-author",) * 2
    assert outcome.execution_arn == pipeline.find_execution(
        aws, retraining(aws, git_repo, git_repo.head()))
    assert outcome.execution_status in ("RUNNING", "SUCCEEDED")
    assert {c.target for c in outcome.changes} == {"ssm", "s3-config", "pipeline", "endpoint"}
    assert not outcome.noop and not outcome.drift
    assert [(v.name, v.model_data_url, v.weight) for v in outcome.variants] == [
        ("champion", plan.artifact, 100)]
    record = artifacts.get_apply_record(aws, git_repo.head())
    assert record is not None and record.status == "complete"
    assert record.backup_keys == (outcome.backup_key,)
    text = describe(outcome)
    assert "ssm       /fraud-detection/hyperparameters/eta: (absent) → 0.1" in text
    assert f"backup: {outcome.backup_key}" in text and str(outcome.execution_arn) in text
    assert lock.holder(aws) is None


def test_second_apply_of_the_same_range_changes_nothing(
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo) -> None:
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
    (ssm, "backup_once", False), (ssm, "write", False), (ssm, "write", True),
    (config_store, "write", False), (pipeline, "start", False), (endpoint, "reconcile", False),
    (artifacts, "put_apply_record", False),
], ids=["ssm-backup", "ssm-write", "ssm-write-half", "config", "pipeline", "endpoint",
        "apply-record"])
def test_failure_half_way_is_completed_by_the_next_run(
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], monkeypatch: pytest.MonkeyPatch,
        module: Any, name: str, partial: bool) -> None:
    text = request_yaml("exp-xgboost-2", eta=0.2, max_depth=8, rollout=PIPELINE)
    store_plan(text)
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
    assert pipeline.find_execution(aws, retraining(aws, git_repo, pushed[1]))
    assert not outcome.drift  # our own unfinished work is not somebody's hand
    backups = ssm.backups(aws)
    assert backups[:len(backups_before)] == backups_before  # no backup lost
    # The backup named is the one taken before the first write, never a half-written state.
    assert ssm.load_backup(aws, outcome.backup_key or "") == FIRST_SSM
    assert backups[len(backups_before):] == [outcome.backup_key]  # exactly one per apply
    # The outcome lists every change of the apply, whichever run made it.
    assert {c.target for c in outcome.changes} >= {"ssm", "s3-config", "pipeline"}
    assert {(c.key.rsplit("/", 1)[1], c.before, c.after) for c in outcome.changes
            if c.target == "ssm"} == {("eta", "0.1", "0.2"), ("max_depth", "6", "8"),
                                      ("gamma", "1.0", None)}
    record = artifacts.get_apply_record(aws, pushed[1])
    assert record is not None and record.status == "complete"
    assert set(record.backup_keys) == set(backups) - set(backups_before)
    assert apply_range(git_repo, pushed).noop


def test_revert_restores_previous_parameters_and_config(
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan]) -> None:
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
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], capsys: pytest.CaptureFixture[str]) -> None:
    churn = target("churn")
    for bucket in (churn.artifacts_bucket, churn.config_bucket):
        boto3.client("s3").create_bucket(Bucket=bucket)
    create_signing_key(churn)
    other = request_yaml("exp-churn-1")
    store_plan(other, t=churn)  # the other target's file is fine, and still nothing may change
    before = state(aws)
    start = git_repo.head()
    git_repo.commit({PATH: SECOND, "promotion-requests/churn.yaml": other}, "Two at once")
    with pytest.raises(NotPlanned, match=r"was never planned, no plan under s3://fraud-detection-"
                                         r"models/promotion-bot/plans/heads/[0-9a-f]{40}/"):
        apply(git_repo.path, start, "HEAD", None)

    code = cli.main(["apply", "--repo", str(git_repo.path), "--before", start])
    assert code == 1
    assert "nothing was applied" in capsys.readouterr().err
    assert state(aws) == before


def test_failed_plan_is_refused(aws: Target, git_repo: GitRepo,
                                store_plan: Callable[..., Plan]) -> None:
    store_plan(FIRST, passed=False)
    with pytest.raises(NotPlanned, match="did not pass its gates"):
        apply_range(git_repo, merge(git_repo, FIRST, "Promote"))
    assert ssm.read(aws) == {} and config_store.read(aws) is None


def test_apply_refused_while_another_holds_the_lock(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
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
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo) -> None:
    start = git_repo.head()
    git_repo.git("mv", PATH, PATH.replace(".yaml", ".yml"))
    git_repo.git("commit", "-q", "-m", "Rename")
    outcome = apply_range(git_repo, (start, git_repo.pushed()))
    assert not outcome.retired and outcome.path.endswith(".yml")
    assert ssm.read(aws) == FIRST_SSM


def test_deleted_request_retires_the_challenger_and_keeps_the_champion(
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan]) -> None:
    champion = first[1].artifact
    challenger = store_plan(SECOND_AS_CHALLENGER).artifact
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
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan]) -> None:
    boto3.client("ssm", region_name=aws.region).put_parameter(
        Name="/fraud-detection/hyperparameters/eta", Value="0.9", Type="String", Overwrite=True)

    again = apply_range(git_repo, (f"{git_repo.head()}~1", git_repo.head()))
    assert [(c.key, c.before, c.after) for c in again.drift] == [
        ("/fraud-detection/hyperparameters/eta", "0.9", "0.1")]
    assert ssm.read(aws) == FIRST_SSM
    assert ssm.load_backup(aws, again.backup_key or "")["eta"] == "0.9"
    assert "DRIFT /fraud-detection/hyperparameters/eta: live 0.9" in describe(again)
    assert "(the old value is in the hyperparameters' backup)" in describe(again)

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
        for reviewer in ("bob", "carol"):
            server.add_collaborator(reviewer, "write")
        yield server


def test_approvers_are_recorded_and_the_outcome_commented(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
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
    assert plan.content_sha256 == config.content_sha256
    statuses = github.statuses(pushed[1])
    assert [(s["context"], s["state"]) for s in statuses][-1] == (
        "promotion-bot/apply", "success")

    assert apply_range(git_repo, pushed, host).noop
    assert len(github.comments(pr)) == 1 and github.comments(pr)[0]["body"] == body


def test_merge_without_approval_is_refused_on_github(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        github: LocalGitHub) -> None:
    host = GitHubHost(github.token, github.repository, github.url)
    store_plan(FIRST)
    pushed = merge(git_repo, FIRST, "Promote")
    pr = github.open_pull(head_sha=pushed[1], author="dana", title="Promote")
    github.merge_pull(pr, pushed[1])
    with pytest.raises(NotApproved, match=f"PR #{pr}: no review; 0 of 1 required approvals; "):
        apply_range(git_repo, pushed, host)
    assert ssm.read(aws) == {}


def test_failure_is_reported_on_the_pull_request(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
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
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
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
        first: tuple[Outcome, Plan], aws: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], capsys: pytest.CaptureFixture[str]) -> None:
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


# -- catching up: a run cancelled before it started (one pending run per concurrency group) --

CHURN_PATH = "promotion-requests/churn.yaml"
CHURN = request_yaml("exp-churn-1", eta=0.3)
ALICE, BOB = "Alice Analyst <alice@example.com>", "Bob Builder <bob@example.com>"


@pytest.fixture
def churn(aws: Target) -> Target:
    """A second target with its buckets (no pipeline: its requests don't ask for one)."""
    t = target("churn")
    s3 = boto3.client("s3", region_name=t.region)
    for bucket in (t.config_bucket, t.artifacts_bucket, t.data_bucket):
        s3.create_bucket(Bucket=bucket)
    create_signing_key(t)
    return t


def two_merges(git_repo: GitRepo) -> tuple[str, str, str]:
    """Merge 1 changes fraud-detection's file, merge 2 churn's; return start, c1, c2."""
    start = git_repo.head()
    c1 = git_repo.commit({PATH: FIRST}, "Promote exp-xgboost-1", author=ALICE)
    c2 = git_repo.commit({CHURN_PATH: CHURN}, "Promote exp-churn-1", author=BOB)
    return start, c1, c2


def churn_state(t: Target) -> dict[str, Any]:
    """``state`` for a target without a retraining pipeline."""
    s3 = boto3.client("s3", region_name=t.region)
    objects = sorted((o["Key"], o["ETag"]) for bucket in (t.config_bucket, t.artifacts_bucket)
                     for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return {"ssm": ssm.read(t), "backups": ssm.backups(t), "objects": objects,
            "endpoint": endpoint.read(t)}


def test_a_change_whose_run_was_cancelled_is_applied_by_the_next_run(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan]) -> None:
    plan = store_plan(FIRST)
    store_plan(CHURN, t=churn)
    _, c1, c2 = two_merges(git_repo)
    shown: list[str] = []

    outcomes = apply(git_repo.path, c1, c2, None, report=lambda o: shown.append(describe(o)))

    assert [(o.target, o.caught_up) for o in outcomes] == [("churn", None), (TARGET, c1)]
    missed = outcomes[1]
    assert not missed.noop and {c.target for c in missed.changes} == {
        "ssm", "s3-config", "pipeline", "endpoint"}
    assert ssm.read(aws) == FIRST_SSM
    config = config_store.read(aws)
    assert config is not None
    assert (config.experiment_id, config.content_sha256, config.commit) == (
        "exp-xgboost-1", plan.content_sha256, c2)
    assert config.approvers == [ALICE]  # the author of the change, not of the range's end
    churn_config = config_store.read(churn)
    assert churn_config is not None and churn_config.approvers == [BOB]
    assert f"{PATH} was changed in {c1[:12]} but never applied (a cancelled run?): applying " \
           "it now" in shown[1]
    assert "never applied" not in shown[0]
    record = artifacts.get_apply_record(aws, c2)
    assert record is not None and record.status == "complete"
    assert (record.caught_up, record.request_commit) == (c1, c1)


def test_a_second_run_after_catching_up_changes_nothing(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(FIRST)
    store_plan(CHURN, t=churn)
    _, c1, c2 = two_merges(git_repo)
    assert len(apply(git_repo.path, c1, c2, None)) == 2
    before = state(aws), churn_state(churn)

    again = apply(git_repo.path, c1, c2, None)

    assert [(o.target, o.noop) for o in again] == [("churn", True)]  # nothing missed any more
    assert (state(aws), churn_state(churn)) == before
    assert "warning" not in capsys.readouterr().err


def test_a_missed_change_without_a_plan_is_skipped_and_the_range_applied(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(CHURN, t=churn)  # fraud-detection's change was never planned
    _, c1, c2 = two_merges(git_repo)

    outcomes = apply(git_repo.path, c1, c2, None)

    assert [o.target for o in outcomes] == ["churn"]
    assert config_store.read(churn) is not None
    assert ssm.read(aws) == {} and config_store.read(aws) is None
    err = capsys.readouterr().err
    assert f"warning: {PATH} was changed in {c1[:12]} but never applied (a cancelled run?), " \
           f"and cannot be applied now: {PATH} at {c2[:12]}: the reviewed head {c1[:12]}" in err
    assert "was never planned" in err and f"skipped {PATH}" in err
    assert "nothing was applied" not in err  # the range was applied


def test_an_unplanned_file_of_the_range_still_refuses_everything(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan]) -> None:
    store_plan(FIRST)  # the missed change is fine, the range's is not planned
    _, c1, c2 = two_merges(git_repo)
    with pytest.raises(NotPlanned, match=f"{CHURN_PATH} at .* was never planned"):
        apply(git_repo.path, c1, c2, None)
    assert ssm.read(aws) == {} and config_store.read(aws) is None
    assert config_store.read(churn) is None


def test_production_applied_from_a_later_commit_is_not_undone(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan]) -> None:
    """Re-running an old run (GitHub's "Re-run jobs") must not roll other targets back."""
    store_plan(FIRST)
    store_plan(CHURN, t=churn)
    store_plan(SECOND)
    start, c1, c2 = two_merges(git_repo)
    apply(git_repo.path, start, c2, None)
    c3 = git_repo.commit({PATH: SECOND}, "Promote exp-xgboost-2")
    apply(git_repo.path, c2, c3, None)
    assert ssm.read(aws) == SECOND_SSM

    again = apply(git_repo.path, c1, c2, None)  # at c2 fraud-detection still asks for FIRST

    assert [(o.target, o.noop) for o in again] == [("churn", True)]
    assert ssm.read(aws) == SECOND_SSM
    config = config_store.read(aws)
    assert config is not None and config.commit == c3


def test_a_catch_up_that_failed_half_way_is_finished_by_the_next_run(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], monkeypatch: pytest.MonkeyPatch) -> None:
    store_plan(FIRST)
    store_plan(CHURN, t=churn)
    _, c1, c2 = two_merges(git_repo)
    real = endpoint.reconcile
    failed: list[str] = []

    def reconcile(t: Target, *args: Any, **kwargs: Any) -> Any:
        if t.name == TARGET and not failed:
            failed.append(t.name)
            raise RuntimeError("injected failure in endpoint.reconcile")
        return real(t, *args, **kwargs)

    monkeypatch.setattr(endpoint, "reconcile", reconcile)
    with pytest.raises(RuntimeError, match="injected"):
        apply(git_repo.path, c1, c2, None)
    config = config_store.read(aws)  # written: its content now matches the missed file
    assert config is not None and endpoint.read(aws) is None

    outcomes = apply(git_repo.path, c1, c2, None)

    assert [(o.target, o.caught_up) for o in outcomes] == [("churn", None), (TARGET, c1)]
    assert endpoint.read(aws) is not None
    record = artifacts.get_apply_record(aws, c2)
    assert record is not None and record.status == "complete"
    assert [o.noop for o in apply(git_repo.path, c1, c2, None)] == [True]


@pytest.mark.parametrize("missed", [True, False], ids=["missed", "both-in-range"])
def test_approvers_come_from_each_files_own_pull_request(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], github: LocalGitHub, missed: bool) -> None:
    host = GitHubHost(github.token, github.repository, github.url)
    store_plan(FIRST)
    store_plan(CHURN, t=churn)
    start, c1, c2 = two_merges(git_repo)
    for sha, reviewer in ((c1, "bob"), (c2, "carol")):
        pr = github.open_pull(head_sha=sha, author="dana", title=f"Promote {sha[:7]}")
        github.review(pr, reviewer, "APPROVED")
        github.merge_pull(pr, sha)

    outcomes = apply(git_repo.path, c1 if missed else start, c2, host)

    assert {o.target: (o.pull_request, o.approval.approvers, o.caught_up) for o in outcomes} == {
        TARGET: (1, ("bob",), c1 if missed else None), "churn": (2, ("carol",), None)}
    config, churn_config = config_store.read(aws), config_store.read(churn)
    assert config is not None and churn_config is not None
    assert (config.approvers, config.pull_request) == (["bob"], 1)
    assert (churn_config.approvers, churn_config.pull_request) == (["carol"], 2)
    [first_comment], [second_comment] = github.comments(1), github.comments(2)
    assert "promotion-bot:apply:fraud-detection" in first_comment["body"]
    assert "promotion-bot:apply:churn" in second_comment["body"]
    assert ("but never applied (a cancelled run?)" in first_comment["body"]) is missed
    assert "never applied" not in second_comment["body"]
    assert github.statuses(c2)[-1]["state"] == "success"


def test_a_missed_change_without_approval_is_skipped_on_github(
        aws: Target, churn: Target, git_repo: GitRepo,
        store_plan: Callable[..., Plan], github: LocalGitHub,
        capsys: pytest.CaptureFixture[str]) -> None:
    host = GitHubHost(github.token, github.repository, github.url)
    store_plan(FIRST)
    store_plan(CHURN, t=churn)
    _, c1, c2 = two_merges(git_repo)
    for sha, reviewer in ((c1, None), (c2, "carol")):
        pr = github.open_pull(head_sha=sha, author="dana", title=f"Promote {sha[:7]}")
        if reviewer:
            github.review(pr, reviewer, "APPROVED")
        github.merge_pull(pr, sha)

    outcomes = apply(git_repo.path, c1, c2, host)

    assert [o.target for o in outcomes] == ["churn"]
    assert ssm.read(aws) == {} and config_store.read(aws) is None
    err = capsys.readouterr().err
    assert f"{PATH} was changed in {c1[:12]} but never applied" in err
    assert "PR #1: no review; 0 of 1 required approvals" in err
    assert github.comments(1) == []
