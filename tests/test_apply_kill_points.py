"""Apply killed after each of its AWS calls in turn, then resumed: every change of the apply
is in the resumed outcome and in the record, and there is exactly one SSM backup and one
config archive per apply.

The kill is driven through botocore's event hooks on the bot's own clients: after the N-th
call returns (its effect done, its answer about to be read) ``Killed`` is raised, and from
then on every call raises it too, as in a process that died there: nothing more reaches AWS,
not the failure record, not the lock release. The next apply breaks the dead run's lock, as
a person would, and resumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from conftest import GitRepo, request_yaml

from bot.adapters.aws import artifacts, clients, lock, ssm
from bot.core.domain import Change, Plan
from bot.flows.apply import apply
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"


def promotion(experiment: str, eta: float, depth: int) -> str:
    """A promotion of a new model to champion, retrained on merge: every resource changes."""
    return request_yaml(experiment, eta=eta, max_depth=depth, rollout=(
        "rollout:\n  pipeline: true\n  challenger:\n    traffic_percent: 100\n"
        "    override_reason: these tests promote straight away\n"))


X, Y = promotion("exp-x", 0.1, 6), promotion("exp-y", 0.2, 8)

pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


class Killed(BaseException):
    """The process died here."""


class Switch:
    """Counts the bot's AWS calls; kills the run after call number ``kill_after``."""

    def __init__(self) -> None:
        self.on = False
        self.calls: list[str] = []
        self.kill_after: int | None = None
        self.dead = False

    def after(self, event_name: str, **_: Any) -> None:
        if not self.on or self.dead:
            return
        self.calls.append(event_name.removeprefix("after-call."))
        if len(self.calls) == self.kill_after:
            self.dead = True
            raise Killed(f"killed after call {self.kill_after}: {self.calls[-1]}")

    def before(self, **_: Any) -> None:
        if self.on and self.dead:
            raise Killed("a dead process makes no more calls")

    def arm(self, kill_after: int | None) -> None:
        self.on, self.calls, self.kill_after, self.dead = True, [], kill_after, False


@pytest.fixture
def switch(monkeypatch: pytest.MonkeyPatch) -> Switch:
    """Every boto3 client the bot creates from now on reports its calls to the switch."""
    hooks = Switch()
    real = clients._create

    def create(service: str, region: str) -> Any:
        created = real(service, region)
        created.meta.events.register("after-call", hooks.after)
        created.meta.events.register("before-call", hooks.before)
        return created

    monkeypatch.setattr(clients, "_create", create)
    clients.forget()
    return hooks


def archives(t: Target) -> list[str]:
    s3 = boto3.client("s3", region_name=t.region)
    found = s3.list_objects_v2(Bucket=t.config_bucket, Prefix=t.config_archive_prefix)
    return sorted(o["Key"] for o in found.get("Contents", []))


def shape(changes: tuple[Change, ...]) -> set[tuple[Any, ...]]:
    """Changes as comparable across commits: the config's and pipeline's name the commit."""
    found: set[tuple[Any, ...]] = set()
    for c in changes:
        if c.target == "s3-config":
            found.add((c.target, c.key.rsplit("#", 1)[-1]))
        elif c.target == "pipeline":
            found.add((c.target, c.after))
        else:
            found.add((c.target, c.key, c.before, c.after))
    return found


def one_apply(repo: GitRepo, store_plan: Callable[..., Plan], text: str
              ) -> tuple[str, str]:
    store_plan(text)
    before = repo.head()
    return before, repo.commit({PATH: text}, "Promote")


def test_apply_killed_after_each_aws_call_is_resumed_with_every_change(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        switch: Switch) -> None:
    t = aws
    [first] = apply(git_repo.path, *one_apply(git_repo, store_plan, X), None)
    assert not first.noop
    # The reference: X → Y and Y → X uninterrupted, counting the calls of one apply.
    reference: dict[str, set[tuple[Any, ...]]] = {}
    counts = []
    for text in (Y, X):
        switch.arm(None)
        [done] = apply(git_repo.path, *one_apply(git_repo, store_plan, text), None)
        switch.on = False
        reference[text] = shape(done.changes)
        counts.append(len(switch.calls))
        assert {c.target for c in done.changes} == {"ssm", "s3-config", "pipeline", "endpoint"}
    calls = max(counts)
    assert calls > 40, switch.calls  # preflight, lock, SSM, S3, Step Functions, SageMaker
    # Every write (a kill right after it is a lost answer) and every third read: killing
    # after each of the ~70 calls takes minutes on a small machine, and a kill after a read
    # leaves the same state as a kill after the write before it.
    points = [n for n, call in enumerate(switch.calls, 1)
              if not call.split(".")[-1].startswith(("Get", "Head", "List", "Describe"))
              or n % 3 == 0]

    killed_runs = 0
    for i, kill_after in enumerate(points):
        text = Y if i % 2 == 0 else X
        was = ssm.read(t)
        backups, archived = ssm.backups(t), archives(t)
        pushed = one_apply(git_repo, store_plan, text)

        switch.arm(kill_after)
        with contextlib.suppress(Killed):
            apply(git_repo.path, *pushed, None)
        switch.on = False
        # (How often SageMaker is polled varies: an apply may end before the last points.)
        killed_runs += switch.dead
        lock.break_lock(t)  # the dead run's lock: what break-lock is for

        killed = artifacts.get_apply_record(t, pushed[1])
        [resumed] = apply(git_repo.path, *pushed, None)
        where = f"killed after call {kill_after} ({switch.calls[-1]})"
        if killed is not None and killed.finished:
            # Killed after the apply was recorded complete (releasing the lock): the rerun
            # is a new apply of the commit, and finds nothing to do.
            assert resumed.noop, where
        else:
            assert shape(resumed.changes) == reference[text], where
        record = artifacts.get_apply_record(t, pushed[1])
        assert record is not None and record.finished, where
        assert shape(record.changes) == reference[text], where
        new_backups = [k for k in ssm.backups(t) if k not in backups]
        assert new_backups == [record.detail("backup_key")], where
        assert ssm.load_backup(t, new_backups[0]) == was, where
        new_archives = [k for k in archives(t) if k not in archived]
        assert [f"s3://{t.config_bucket}/{k}" for k in new_archives] == [
            record.detail("config_archive")], where
        assert lock.holder(t) is None, where
    assert killed_runs >= len(points) // 2  # the kills happened (SageMaker polls vary)
