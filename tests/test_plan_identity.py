"""A plan's identity is what was reviewed, against moto: apply takes the last signed plan of
the merged pull request head, and refuses one that is too old or was judged against a
champion production no longer serves; history shows the plan the reviewers saw."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from conftest import GitRepo, put_plan, request_yaml

from bot import cli
from bot.adapters.aws import config_store, plan_store, ssm
from bot.core.domain import Plan
from bot.errors import NotPlanned
from bot.flows.apply import apply
from bot.flows.audit_trail import trail
from bot.report.audit_trail import render
from bot.settings import Target, settings

PATH = "promotion-requests/fraud-detection.yaml"
FIRST = request_yaml("exp-xgboost-1")
SECOND = request_yaml("exp-xgboost-2", eta=0.2)

pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


def ago(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).replace(microsecond=0).isoformat()


def branch(repo: GitRepo, name: str, text: str) -> str:
    """A pull request's branch from main with the request ``text``; returns its head."""
    repo.git("checkout", "-q", "-b", name, "main")
    head = repo.commit({PATH: text}, f"Promote on {name}")
    repo.git("checkout", "-q", "main")
    return head


def merge(repo: GitRepo, name: str) -> tuple[str, str]:
    """Merge ``name`` into main with a merge commit; returns the pushed range."""
    before = repo.head()
    repo.git("merge", "-q", "--no-ff", name, "-m", f"Merge pull request from {name}")
    return before, repo.head()


def refused(repo: GitRepo, pushed: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    """``promotion-bot apply`` of ``pushed`` refuses with one line; returns it."""
    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(repo.path), "--before", pushed[0], "--after",
                     pushed[1]]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith("nothing was applied"), err
    return err.strip()


def test_apply_deploys_the_plan_of_the_merged_head_not_a_later_plan_of_its_content(
        aws: Target, git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    head = branch(git_repo, "a", FIRST)
    reviewed = put_plan(aws, FIRST, head=head, signed_at=ago(hours=2))
    # Another pull request's plan of the same request bytes, made later (other data).
    put_plan(aws, FIRST, head="b" * 40, accuracy=0.91, signed_at=ago(hours=1))
    pushed = merge(git_repo, "a")

    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", pushed[0],
                     "--after", pushed[1]]) == 0
    config = config_store.read(aws)
    assert config is not None and config.metrics["accuracy"] == reviewed.metrics["accuracy"]


def test_of_two_plans_of_one_head_the_last_signed_wins_not_the_last_written(
        aws: Target, git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    head = branch(git_repo, "a", FIRST)
    later = ago(minutes=10)
    put_plan(aws, FIRST, head=head, signed_at=later)  # signed last, passed
    put_plan(aws, FIRST, head=head, passed=False, accuracy=0.5, signed_at=ago(minutes=20))
    found = plan_store.plan_of_head(aws, head)
    assert found is not None and found.plan.passed and found.signed_at == later
    [outcome] = apply(git_repo.path, *merge(git_repo, "a"), None)
    assert not outcome.noop

    other = branch(git_repo, "b", SECOND)
    put_plan(aws, SECOND, head=other, passed=False, accuracy=0.5, signed_at=ago(minutes=10))
    put_plan(aws, SECOND, head=other, signed_at=ago(minutes=20))  # written last, passing
    message = refused(git_repo, merge(git_repo, "b"), capsys)
    assert f"of head {other[:12]} did not pass its gates" in message


def test_a_plan_older_than_the_setting_is_refused(
        aws: Target, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    head = branch(git_repo, "a", FIRST)
    signed = ago(days=31)
    found = put_plan(aws, FIRST, head=head, signed_at=signed)
    pushed = merge(git_repo, "a")

    message = refused(git_repo, pushed, capsys)
    stored = plan_store.plan_of_head(aws, head)
    assert stored is not None and stored.plan.content_sha256 == found.content_sha256
    assert message == (
        f"promotion-bot apply: {PATH} at {pushed[1][:12]}: the plan {stored.uri} of head "
        f"{head[:12]} was signed {signed}, 31 days ago, more than the 30 days a plan is trusted "
        "(PROMOTION_BOT_PLAN_MAX_AGE_DAYS); re-plan; nothing was applied")
    assert ssm.read(aws) == {} and config_store.read(aws) is None

    monkeypatch.setenv("PROMOTION_BOT_PLAN_MAX_AGE_DAYS", "45")
    settings.cache_clear()
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", pushed[0],
                     "--after", pushed[1]]) == 0


def test_a_plan_judged_against_a_champion_production_no_longer_serves_is_refused(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.core.integrity import model_digest

    store_plan(SECOND)
    start = git_repo.head()
    second = git_repo.commit({PATH: SECOND}, "Promote exp-xgboost-2")  # planned: no champion
    store_plan(FIRST)
    head = branch(git_repo, "a", FIRST)  # planned while production has no champion either
    apply(git_repo.path, start, second, None)  # exp-xgboost-2 becomes the champion
    champion = config_store.read(aws)
    assert champion is not None and champion.champion is not None
    pushed = merge(git_repo, "a")

    message = refused(git_repo, pushed, capsys)
    assert message.startswith(f"promotion-bot apply: {PATH} at {pushed[1][:12]}: production "
                              "changed since this plan: re-plan (the plan s3://")
    assert (f"of head {head[:12]} was judged against the seed baseline, production now serves "
            f"model {str(model_digest(champion.champion.model_artifact))[:12]})") in message
    assert config_store.read(aws) == champion

    put_plan(aws, FIRST, head=head)  # re-planned: judged against today's champion
    [outcome] = apply(git_repo.path, *pushed, None)
    assert not outcome.noop
    config = config_store.read(aws)
    assert config is not None and config.experiment_id == "exp-xgboost-1"
    [again] = apply(git_repo.path, *pushed, None)  # its own apply run again: still fine
    assert again.noop


def test_a_squash_merge_deploys_the_plan_of_the_pull_requests_head_on_github(
        aws: Target, git_repo: GitRepo) -> None:
    from bot.adapters.aws import artifacts
    from bot.adapters.github import GitHubHost
    from bot.local.github import LocalGitHub

    head = branch(git_repo, "a", FIRST)
    put_plan(aws, FIRST, head=head)
    before = git_repo.head()
    squash = git_repo.commit({PATH: FIRST}, "Promote exp-xgboost-1 (#1)")  # not a merge
    with pytest.raises(NotPlanned, match=rf"the reviewed head {squash[:12]} \(the commit "
                                         r"itself, merged from no pull request\) was never "
                                         "planned"):
        apply(git_repo.path, before, squash, None)  # without the code host: the commit
    with LocalGitHub(repository="acme/fraud-models") as github:
        github.add_collaborator("bob", "write")
        pr = github.open_pull(head_sha=head, author="dana", title="Promote")
        github.review(pr, "bob", "APPROVED")
        github.merge_pull(pr, squash)
        host = GitHubHost(github.token, github.repository, github.url)

        [outcome] = apply(git_repo.path, before, squash, host)

    assert not outcome.noop and outcome.pull_request == pr
    stored = plan_store.plan_of_head(aws, head)
    record = artifacts.get_apply_record(aws, squash)
    assert stored is not None and record is not None
    assert record["plan_digest"] == stored.digest


def test_a_head_planned_only_in_the_old_layout_is_refused_with_re_plan(
        aws: Target, git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from bot.adapters.aws import artifacts
    from bot.core.request import Request

    sha = Request.model_validate(yaml.safe_load(FIRST)).content_sha256()
    artifacts.write_object(f"s3://{aws.artifacts_bucket}/promotion-bot/plans/{sha}/plan.json",
                           b'{"format": 3}')
    head = branch(git_repo, "a", FIRST)
    message = refused(git_repo, merge(git_repo, "a"), capsys)
    assert (f"the only plan of this content, s3://{aws.artifacts_bucket}/promotion-bot/plans/"
            f"{sha}/plan.json, is of an older format that names no pull request head; re-plan "
            f"its pull request (head {head[:12]})") in message


def test_history_shows_the_plan_the_reviewers_saw_and_the_plan_apply_used(
        aws: Target, git_repo: GitRepo) -> None:
    head = branch(git_repo, "a", FIRST)
    put_plan(aws, FIRST, head=head, signed_at=ago(hours=2))
    pushed = merge(git_repo, "a")
    apply(git_repo.path, *pushed, None)
    reviewed = plan_store.plan_of_head(aws, head)
    put_plan(aws, FIRST, head="b" * 40, accuracy=0.91)  # a later plan of the same content
    assert reviewed is not None

    [entry] = trail(git_repo.path, "fraud-detection")
    assert entry.commit.sha == head and entry.reviewed_head == head
    assert entry.plan_digest == reviewed.digest and entry.plan == reviewed.plan
    assert [r["plan_digest"] for r in entry.applies] == [reviewed.digest]
    text = render([entry])
    assert (f"reviewed:     plan {reviewed.digest[:12]} of head {head[:12]}, signed "
            f"{reviewed.signed_at}") in text
    assert f"plan used: {reviewed.digest[:12]}, the reviewed plan" in text
    assert "accuracy 0.9990" in text and "0.9100" not in text


def test_a_head_that_is_not_a_commit_id_is_refused_before_anything_runs(
        git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    git_repo.commit({PATH: FIRST}, "Promote")
    capsys.readouterr()
    assert cli.main(["plan", str(git_repo.path / PATH), "--no-github", "--head",
                     "../heads/x"]) == 2
    err = capsys.readouterr().err
    assert err == ("promotion-bot plan: --head '../heads/x': not a commit id (7 to 64 "
                   "lower-case hex digits); the plan is stored under its pull request's head "
                   "commit\n")
