"""The rollout rules on a pull request: the base's request and its soak come from git history."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import GitRepo, request_yaml

from bot.cli import main
from bot.commands.plan import base_revision, prepare, read_checkout
from bot.errors import InvalidRequest
from bot.flows.rollout_history import previous_state

PATH = "promotion-requests/fraud-detection.yaml"
NOW = datetime.now(UTC).replace(microsecond=0)
FIX = "    override_reason: fraud spike, the champion misses the new pattern\n"
# request_yaml's rollout block starts at line 13, so traffic_percent is on line 15.
SHARE_LINE = 15


def rollout(share: int, extra: str = "") -> str:
    return f"rollout:\n  challenger:\n    traffic_percent: {share}\n{extra}"


def at(when: datetime, monkeypatch: pytest.MonkeyPatch, committed: datetime | None = None
       ) -> None:
    """Date the next commits: written at ``when``, landed at ``committed`` (default the same)."""
    monkeypatch.setenv("GIT_AUTHOR_DATE", f"{int(when.timestamp())} +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{int((committed or when).timestamp())} +0200")


def merge(repo: GitRepo, files: dict[str, str | None], message: str, when: datetime,
          monkeypatch: pytest.MonkeyPatch) -> str:
    at(when, monkeypatch)
    return repo.commit(files, message)


@pytest.fixture
def pr(git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """Run the bot in the repository, as on a pull request checkout."""
    monkeypatch.chdir(git_repo.path)
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    return git_repo


def propose(repo: GitRepo, text: str) -> None:
    """The pull request's version of the request: in the work tree, on top of main."""
    (repo.path / PATH).write_text(text)


def test_previous_state_is_the_base_request_and_when_its_share_took_effect(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = NOW - timedelta(days=10)
    merge(git_repo, {PATH: request_yaml(rollout=rollout(1))}, "1%", start, monkeypatch)
    merge(git_repo, {PATH: request_yaml(rollout=rollout(1, "    instance_count: 2\n"))},
          "more instances, same share", start + timedelta(days=1), monkeypatch)
    request, since = previous_state(git_repo.path, "main", PATH)
    assert request is not None and request.rollout.challenger is not None
    assert request.rollout.challenger.instance_count == 2
    assert since == start and since.tzinfo == UTC  # committed at +0200, read back in UTC

    ten = merge(git_repo, {PATH: request_yaml(rollout=rollout(10))}, "10%",
                start + timedelta(days=3), monkeypatch)
    assert previous_state(git_repo.path, "main", PATH)[1] == start + timedelta(days=3)
    assert previous_state(git_repo.path, f"{ten}~1", PATH)[1] == start


def test_a_new_model_at_the_same_share_starts_a_new_soak(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = NOW - timedelta(days=10)
    merge(git_repo, {PATH: request_yaml(rollout=rollout(1))}, "1%", start, monkeypatch)
    merge(git_repo, {PATH: request_yaml(eta=0.2, rollout=rollout(1))}, "new eta",
          start + timedelta(days=2), monkeypatch)
    assert previous_state(git_repo.path, "main", PATH)[1] == start + timedelta(days=2)


def test_a_deleted_file_has_no_previous_state_and_ends_the_run(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = NOW - timedelta(days=10)
    assert previous_state(git_repo.path, "main", PATH) == (None, None)
    merge(git_repo, {PATH: request_yaml(rollout=rollout(1))}, "1%", start, monkeypatch)
    merge(git_repo, {PATH: None}, "retire", start + timedelta(days=1), monkeypatch)
    assert previous_state(git_repo.path, "main", PATH) == (None, None)
    merge(git_repo, {PATH: request_yaml(rollout=rollout(1))}, "again",
          start + timedelta(days=2), monkeypatch)
    assert previous_state(git_repo.path, "main", PATH)[1] == start + timedelta(days=2)


def test_versions_that_do_not_parse_are_skipped(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = NOW - timedelta(days=10)
    merge(git_repo, {PATH: request_yaml(rollout=rollout(10))}, "10%", start, monkeypatch)
    merge(git_repo, {PATH: "experiment_id: [broken\n"}, "oops", start + timedelta(days=1),
          monkeypatch)
    request, since = previous_state(git_repo.path, "main", PATH)
    assert request is not None and request.rollout.challenger is not None
    assert (request.rollout.challenger.traffic_percent, since) == (10, start)


def test_a_share_counts_from_when_it_landed_not_when_it_was_written(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A branch commit written days ago, merged an hour ago, has soaked an hour."""
    written, landed = NOW - timedelta(days=5), NOW - timedelta(hours=1)
    at(written, monkeypatch)
    git_repo.git("checkout", "-q", "-b", "rollout-1")
    git_repo.commit({PATH: request_yaml(rollout=rollout(1))}, "1%")
    git_repo.git("checkout", "-q", "main")
    git_repo.commit({"README.md": "fraud models, v2\n"}, "unrelated")
    at(landed, monkeypatch)
    git_repo.git("merge", "-q", "--no-ff", "-m", "Merge pull request #7", "rollout-1")
    assert previous_state(git_repo.path, "main", PATH)[1] == landed

    git_repo.git("checkout", "-q", "-b", "rebased", "rollout-1~1")
    at(written, monkeypatch, committed=landed)  # a rebase keeps the author date
    git_repo.commit({PATH: request_yaml(rollout=rollout(1))}, "1% (rebased)")
    assert previous_state(git_repo.path, "rebased", PATH)[1] == landed


def test_validate_refuses_a_skipped_step_with_the_field_line(
    pr: GitRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    merge(pr, {PATH: request_yaml(rollout=rollout(1))}, "1%", NOW - timedelta(hours=30),
          monkeypatch)
    propose(pr, request_yaml(rollout=rollout(50)))
    assert main(["validate", "--base", "main", PATH]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{PATH}:{SHARE_LINE}: rollout.challenger.traffic_percent: skips the 10% step: from 1% "
        "the next step is 10% (got 50%); set override_reason to do it anyway"
    ]


def test_validate_refuses_the_next_step_before_the_soak(
    pr: GitRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An hour before validate runs (NOW is when the module was imported, minutes earlier
    # in a full run, which would make it soaked 1.1h).
    merged = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    merge(pr, {PATH: request_yaml(rollout=rollout(1))}, "1%", merged, monkeypatch)
    propose(pr, request_yaml(rollout=rollout(10)))
    assert main(["validate", "--base", "main", PATH]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{PATH}:{SHARE_LINE}: rollout.challenger.traffic_percent: the 1% step must soak 24h "
        f"before the next step; it has soaked 1h since {merged.isoformat(timespec='minutes')}; "
        "set override_reason to do it anyway"
    ]


def test_validate_accepts_the_next_step_after_the_soak(
    pr: GitRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    merge(pr, {PATH: request_yaml(rollout=rollout(1))}, "1%", NOW - timedelta(hours=25),
          monkeypatch)
    propose(pr, request_yaml(rollout=rollout(10)))
    assert main(["validate", "--base", "main", PATH]) == 0
    assert capsys.readouterr().out == "1 file ok\n"


def test_validate_accepts_a_skip_with_a_reason(
    pr: GitRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    merge(pr, {PATH: request_yaml(rollout=rollout(1))}, "1%", NOW - timedelta(hours=1),
          monkeypatch)
    propose(pr, request_yaml(rollout=rollout(50, FIX)))
    assert main(["validate", "--base", "main", PATH]) == 0


@pytest.mark.parametrize("proposed", [rollout(1), ""], ids=["down-a-step", "no-challenger"])
def test_validate_accepts_going_down_at_once(
    pr: GitRepo, monkeypatch: pytest.MonkeyPatch, proposed: str
) -> None:
    merge(pr, {PATH: request_yaml(rollout=rollout(10))}, "10%", NOW - timedelta(minutes=5),
          monkeypatch)
    propose(pr, request_yaml(rollout=proposed))
    assert main(["validate", "--base", "main", PATH]) == 0


def test_validate_starts_a_new_request_at_the_first_step(
    pr: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    propose(pr, request_yaml(rollout=rollout(10)))
    assert main(["validate", "--base", "HEAD", "promotion-requests"]) == 1
    assert "a new challenger starts at the first step, 1% (got 10%)" in capsys.readouterr().out


def test_validate_with_a_bad_base_says_so_in_one_line(
    pr: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    propose(pr, request_yaml(rollout=rollout(1)))
    assert main(["validate", "--base", "no-such-branch", PATH]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"promotion-bot validate: --base: 'no-such-branch' is not a commit in {pr.path.resolve()}"
    ]


def test_plan_refuses_a_skipped_step_before_training(
    pr: GitRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    merge(pr, {PATH: request_yaml(rollout=rollout(1))}, "1%", NOW - timedelta(hours=30),
          monkeypatch)
    propose(pr, request_yaml(rollout=rollout(50)))
    # No AWS is set up here: getting past the check would fail on S3, not with this line.
    assert main(["plan", PATH, "--base", "main", "--no-github", "--out", "out"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{PATH}:{SHARE_LINE}: rollout.challenger.traffic_percent: skips the 10% step: from 1% "
        "the next step is 10% (got 50%); set override_reason to do it anyway"
    ]
    assert not Path("out").exists()


def check_rollout(path: Path) -> None:
    """What plan checks before it starts, against the base it finds (none given)."""
    base = base_revision(None, dict(os.environ))
    prepare(path, read_checkout(path, None, base), "0" * 40, base, explicit=False)


def test_plan_on_github_checks_against_the_fetched_base_branch(
    pr: GitRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = merge(pr, {PATH: request_yaml(rollout=rollout(1))}, "1%",
                 NOW - timedelta(hours=30), monkeypatch)
    propose(pr, request_yaml(rollout=rollout(50)))
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    check_rollout(Path(PATH))  # origin/main was not fetched: skipped, with a note
    assert "origin/main cannot be read here" in capsys.readouterr().err

    pr.git("update-ref", "refs/remotes/origin/main", base)
    with pytest.raises(InvalidRequest, match="skips the 10% step"):
        check_rollout(Path(PATH))
    monkeypatch.delenv("GITHUB_BASE_REF")
    check_rollout(Path(PATH))  # neither --base nor GitHub: nothing to check against


def test_retraining_is_named_after_the_commit_that_changed_what_it_trains_from(
    git_repo: GitRepo,
) -> None:
    from bot.adapters.request_files import parse_request_text
    from bot.flows.rollout_history import retrain_commit

    def current(rev: str) -> str | None:
        text = (git_repo.path / PATH).read_text()
        return retrain_commit(git_repo.path, rev, PATH, parse_request_text(text, PATH)[0])

    first = git_repo.commit({PATH: request_yaml(rollout=rollout(1))}, "1%")
    assert current("HEAD") == first
    git_repo.commit({PATH: request_yaml(rollout=rollout(10))}, "10%: rollout only")
    assert current("HEAD") == first  # no new retraining for a traffic change
    deeper = git_repo.commit({PATH: request_yaml(eta=0.2, rollout=rollout(10))}, "new eta")
    assert current("HEAD") == deeper
    back = git_repo.commit({PATH: request_yaml(rollout=rollout(10))}, "revert eta")
    assert current("HEAD") == back  # a revert retrains with the restored parameters
    (git_repo.path / PATH).write_text(request_yaml(eta=0.3, rollout=rollout(10)))
    assert current("HEAD") is None  # uncommitted: the commit that lands it will be named


def test_a_long_history_is_read_once_and_parsed_only_as_far_as_the_rules_look(
    git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.adapters import request_files
    from bot.core.request_history import retrain_commit

    for step in range(20):
        git_repo.commit({PATH: request_yaml(eta=0.1 + step / 100, rollout=rollout(1))},
                        f"eta {step}")
    parsed: list[str] = []
    validated = request_files._validated

    def counting(document: Any, path: str) -> Any:
        parsed.append(path)
        return validated(document, path)

    monkeypatch.setattr(request_files, "_validated", counting)
    versions = request_files.history(git_repo.path, "main", PATH)
    newest = versions[0].request
    assert len(versions) == 20 and newest is not None
    assert retrain_commit(versions, newest) == git_repo.head()
    assert len(parsed) == 2  # the newest, and the one before it that has another key
    assert versions[-1].request is not None and len(parsed) == 3
