"""`promotion-bot history`: who requested, approved and applied what, when; what was reverted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import GitRepo, request_yaml

from bot import cli
from bot.core.domain import Plan
from bot.flows.apply import apply
from bot.flows.audit_trail import trail
from bot.report.audit_trail import render
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"


pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


def test_history_shows_request_approval_apply_and_revert(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    first, second = request_yaml("exp-1", eta=0.1), request_yaml("exp-2", eta=0.2)
    store_plan(first)
    store_plan(second, passed=True)
    start = git_repo.head()
    one = git_repo.commit({PATH: first}, "Promote exp-1 (#4)",
                          author="Alice Example <alice@example.com>")
    apply(git_repo.path, start, one, None)
    two = git_repo.commit({PATH: second}, "Promote exp-2 (#5)")
    apply(git_repo.path, one, two, None)
    reverted = git_repo.revert(two)
    apply(git_repo.path, two, reverted, None)

    entries = trail(git_repo.path, "fraud-detection")
    assert [e.commit.sha for e in entries] == [reverted, two, one]
    assert entries[0].reverts is not None and entries[0].reverts.sha == two
    assert [e.pull_request for e in entries] == [None, 5, 4]
    assert entries[2].commit.author == "Alice Example"
    assert entries[0].content_sha256 == entries[2].content_sha256  # back to exp-1's content
    assert entries[2].applies[0].status == "complete"

    assert cli.main(["history", "fraud-detection", "--repo", str(git_repo.path)]) == 0
    out = capsys.readouterr().out
    assert out == render(entries) + "\n"
    assert f"{one[:12]}  PR #4  Promote exp-1 (#4)" in out
    assert "requested by: Alice Example <alice@example.com>" in out
    assert "approved by:  Alice Example <alice@example.com> (commit-author)" in out
    assert "approved by:  Merge Bot <merge@example.com> (commit-author)" in out  # the revert
    assert f"reverts:      {two[:12]} Promote exp-2 (#5)" in out
    assert "ssm: eta: 0.2 → 0.1" in out
    assert "plan passed, evaluated 2024-01-15T10:00:00+00:00 (accuracy 0.9990" in out
    assert "backup: /fraud-detection/backups/hyperparameters/" in out


def test_history_without_aws_still_prints_the_git_trail(
        git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    git_repo.commit({PATH: request_yaml()}, "Promote")
    git_repo.commit({PATH: None}, "Retire")
    text = render(trail(git_repo.path))
    assert "request deleted: challenger retired" in text
    assert "stored plans and applies unavailable" in text


def test_history_of_unknown_target_is_a_clear_error(
        git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["history", "nope", "--repo", str(git_repo.path)]) == 2
    assert "no request file for 'nope'" in capsys.readouterr().err
