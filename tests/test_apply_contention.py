"""Apply when others interfere: a second run of the same commit, a broken lock, GitHub refusing
statuses. The last status of a commit is the winner's, and production is never left halfway
because of GitHub."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GitRepo, request_yaml

from bot import cli
from bot.adapters.aws import artifacts, config_store, lock, ssm
from bot.adapters.github import GitHubHost
from bot.core.domain import Plan
from bot.errors import LockHeld, LockLost
from bot.flows.apply import apply
from bot.local import faults
from bot.local.faults import FaultPlan, Rule
from bot.local.github import LocalGitHub
from bot.settings import Target, settings

PATH = "promotion-requests/fraud-detection.yaml"
FIRST = request_yaml("exp-xgboost-1", eta=0.1, max_depth=7)
#: Holds the first DescribeEndpoint (apply reads the live endpoint under its lock) until
#: the test releases it.
HOLD_ENDPOINT_READ = FaultPlan(rules=(Rule(service="sagemaker", operation="DescribeEndpoint",
                                           kind="slow", delay=120, times=1),))


@pytest.fixture(autouse=True)
def no_github_context(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(repository="acme/fraud-models") as server:
        yield server


def host(github: LocalGitHub) -> GitHubHost:
    return GitHubHost(github.token, github.repository, github.url)


@pytest.fixture
def merged(aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
           github: LocalGitHub) -> tuple[str, str, int]:
    """FIRST reviewed, approved and merged; the pushed range and the pull request."""
    store_plan(FIRST)
    before = git_repo.head()
    after = git_repo.commit({PATH: FIRST}, "Promote exp-xgboost-1")
    pr = github.open_pull(head_sha=after, author="dana", title="Promote exp-xgboost-1")
    github.add_collaborator("bob", "write")
    github.review(pr, "bob", "APPROVED")
    github.merge_pull(pr, after)
    return before, after, pr


class Background:
    """``apply`` on a thread; its outcomes or the error it raised."""

    def __init__(self, repo: Path, pushed: tuple[str, str], github: LocalGitHub) -> None:
        self.result: Any = None
        self.warnings: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(repo, pushed, host(github)))
        self._thread.start()

    def _run(self, repo: Path, pushed: tuple[str, str], code_host: GitHubHost) -> None:
        try:
            self.result = apply(repo, *pushed, code_host, warn=self.warnings.append)
        except BaseException as error:
            self.result = error

    def join(self) -> Any:
        self._thread.join(timeout=120)
        assert not self._thread.is_alive()
        return self.result


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def states(github: LocalGitHub, sha: str) -> list[str]:
    return [s["state"] for s in github.statuses(sha) if s["context"] == "promotion-bot/apply"]


def test_a_second_apply_while_the_first_works_past_the_lock_expiry_is_refused_silently(
        aws: Target, git_repo: GitRepo, merged: tuple[str, str, int], github: LocalGitHub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("LOCK_TTL_SECONDS", "2"), ("LOCK_HEARTBEAT_SECONDS", "0.2"),
                        ("ENDPOINT_WAIT_SECONDS", "1.5")):
        monkeypatch.setenv(f"PROMOTION_BOT_{name}", value)
    settings.cache_clear()
    pushed = merged[:2]

    with faults.injected(HOLD_ENDPOINT_READ) as injector:
        first = Background(git_repo.path, pushed, github)
        wait_for(injector.injected, "the first apply to read the endpoint under its lock")
        time.sleep(2.5)  # longer than the lock lives unless the heartbeat renews it
        with pytest.raises(LockHeld) as refused:
            apply(git_repo.path, *pushed, host(github))
        during = states(github, pushed[1])
        injector.release()
        outcomes = first.join()

    assert refused.value.commit == pushed[1]
    assert "being applied by" in refused.value.message
    assert during == ["pending"]  # the refused run wrote nothing
    assert isinstance(outcomes, list) and not outcomes[0].noop, outcomes
    assert states(github, pushed[1]) == ["pending", "success"]
    assert not any("took over" in w for w in first.warnings)
    assert ssm.read(aws)["max_depth"] == "7" and lock.holder(aws) is None


def test_a_run_that_lost_its_lock_stops_before_writing_and_leaves_the_winners_status(
        aws: Target, git_repo: GitRepo, merged: tuple[str, str, int],
        github: LocalGitHub) -> None:
    pushed, pr = merged[:2], merged[2]

    with faults.injected(HOLD_ENDPOINT_READ) as injector:
        first = Background(git_repo.path, pushed, github)
        wait_for(injector.injected, "the first apply to read the endpoint under its lock")
        assert lock.break_lock(aws)  # someone decides the first run is dead
        second = apply(git_repo.path, *pushed, host(github))
        backups = ssm.backups(aws)
        injector.release()
        lost = first.join()

    assert isinstance(lost, LockLost), lost
    assert "stopped before writing anything more" in lost.message
    assert not second[0].noop
    assert ssm.backups(aws) == backups  # the first run wrote nothing after it lost the lock
    assert states(github, pushed[1]) == ["pending", "pending", "success"]
    [comment] = github.comments(pr)
    assert "promotion-bot applied" in comment["body"]
    record = artifacts.get_apply_record(aws, pushed[1])
    assert record is not None and record.status == "complete"


def test_apply_posts_its_outcome_when_github_refuses_statuses_and_says_so(
        aws: Target, git_repo: GitRepo, merged: tuple[str, str, int], github: LocalGitHub,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before, after, pr = merged
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": before, "after": after}))
    for name, value in {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": github.repository,
                        "GITHUB_API_URL": github.url, "GITHUB_EVENT_PATH": str(event),
                        "PROMOTION_BOT_GITHUB_MAX_WAIT_SECONDS": "5"}.items():
        monkeypatch.setenv(name, value)
    injector = github.inject(FaultPlan(rules=(Rule(
        service="github", operation="POST /repos/*/statuses/*", kind="rate-limit",
        retry_after=3600),)))

    code = cli.main(["apply", "--repo", str(git_repo.path)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert injector is not None and len(injector.injected()) == 2  # pending, then success
    assert github.statuses(after) == []
    assert "approved by: bob" in out  # the outcome, printed
    for state in ("pending", "success"):
        assert (f"promotion-bot apply: warning: could not set the commit status "
                f"promotion-bot/apply of {after[:12]} to {state}: GitHub secondary rate limit "
                "on status promotion-bot/apply") in err
    [comment] = github.comments(pr)
    assert "promotion-bot applied" in comment["body"]
    assert "The commit status `promotion-bot/apply` could not be set (GitHub secondary rate " \
           "limit" in comment["body"]
    config = config_store.read(aws)
    assert config is not None and config.commit == after
