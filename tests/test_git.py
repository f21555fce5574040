"""git: which request files a push changed, their content at a revision, their history."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GitRepo

from bot.adapters import git
from bot.errors import BotError

A = "promotion-requests/fraud-detection.yaml"
B = "promotion-requests/churn.yaml"


def test_changed_requests_in_a_range(git_repo: GitRepo) -> None:
    start = git_repo.head()
    first = git_repo.commit({A: "a: 1\n", B: "b: 1\n", "promotion-requests/README.md": "x",
                             "promotion-requests/old/nested.yaml": "n: 1\n"}, "add")
    assert git.changed_requests(git_repo.path, start, first) == [(B, "A"), (A, "A")]
    second = git_repo.commit({A: "a: 2\n", B: None}, "edit and delete")
    assert git.changed_requests(git_repo.path, first, second) == [(B, "D"), (A, "M")]
    assert git.changed_requests(git_repo.path, second, second) == []


def test_rename_retires_one_target_and_adds_another(git_repo: GitRepo) -> None:
    first = git_repo.commit({A: "same: content\n"}, "add")
    git_repo.git("mv", A, B)
    git_repo.git("commit", "-q", "-m", "rename")
    assert git.changed_requests(git_repo.path, first, "HEAD") == [(B, "A"), (A, "D")]


@pytest.mark.parametrize("before", [None, "", "0" * 40, "f" * 40])
def test_missing_start_means_everything_is_new(git_repo: GitRepo, before: str | None) -> None:
    git_repo.commit({A: "a: 1\n"}, "add")
    assert git.changed_requests(git_repo.path, before, "HEAD") == [(A, "A")]


def test_show_file_at_revision(git_repo: GitRepo) -> None:
    first = git_repo.commit({A: "a: 1\n"}, "add")
    git_repo.commit({A: None}, "delete")
    assert git.show(git_repo.path, first, A) == "a: 1\n"
    assert git.show(git_repo.path, "HEAD", A) is None


def test_bad_revision_is_a_clear_error(git_repo: GitRepo) -> None:
    with pytest.raises(BotError, match="'nope' is not a commit in"):
        git.rev_parse(git_repo.path, "nope")
    with pytest.raises(BotError, match="failed in /nonexistent-repo: fatal: cannot change"):
        git.log(Path("/nonexistent-repo"), A)


def test_log_and_revert_detection(git_repo: GitRepo) -> None:
    first = git_repo.commit({A: "a: 1\n"}, "Promote exp-1 (#3)",
                            author="Alice Example <alice@example.com>")
    second = git_repo.commit({A: "a: 2\n"}, "Promote exp-2")
    reverted = git_repo.revert(second)
    log = git.log(git_repo.path, A)
    assert [c.sha for c in log] == [reverted, second, first]
    assert log[0].subject == 'Revert "Promote exp-2"' and log[0].reverts == second
    assert (log[2].author, log[2].email, log[2].subject) == (
        "Alice Example", "alice@example.com", "Promote exp-1 (#3)")
    assert log[2].reverts is None and log[2].date.startswith("20")
    assert git.commit_author(git_repo.path, first) == "Alice Example <alice@example.com>"
    assert git.is_ancestor(git_repo.path, first, reverted)
    assert not git.is_ancestor(git_repo.path, reverted, first)
    assert git.request_paths(git_repo.path) == [A]


def test_revert_of_a_merge_commit_names_the_merge(git_repo: GitRepo) -> None:
    git_repo.git("checkout", "-q", "-b", "promote")
    git_repo.commit({A: "a: 1\n"}, "Promote")
    git_repo.git("checkout", "-q", "main")
    git_repo.git("merge", "-q", "--no-ff", "promote", "-m", "Merge pull request #2")
    merge = git_repo.head()
    git_repo.git("revert", "--no-edit", "-m", "1", merge)
    assert git.log(git_repo.path, A)[0].reverts == merge


def test_a_commit_read_alone_says_what_it_reverts(git_repo: GitRepo) -> None:
    first = git_repo.commit({A: "a: 1\n"}, "Promote exp-1")
    reverted = git_repo.revert(first)
    found = git.commit(git_repo.path, reverted)
    assert (found.sha, found.subject, found.reverts) == (reverted, 'Revert "Promote exp-1"',
                                                         first)
    assert git.commit(git_repo.path, first).reverts is None
    with pytest.raises(BotError, match="is not a commit"):
        git.commit(git_repo.path, "f" * 40)


def test_file_history_reads_every_version_at_once_newest_first(git_repo: GitRepo) -> None:
    first = git_repo.commit({A: "a: 1\n"}, "add")
    git_repo.commit({"README.md": "unrelated\n"}, "not this file")
    big = git_repo.commit({A: "a: " + "9" * 100 + "\n"}, "too big for the limit")
    deleted = git_repo.commit({A: None}, "delete")
    (git_repo.path / A).parent.mkdir(exist_ok=True)
    (git_repo.path / A).symlink_to("elsewhere.yaml")  # in the repository, never followed
    git_repo.git("add", A)
    git_repo.git("commit", "-q", "-m", "a link")
    link = git_repo.head()
    (git_repo.path / A).unlink()  # the next version is a file again, not written through
    accented = git_repo.commit({A: "a: café ☕\n"}, "multi-byte text")

    found = git.file_history(git_repo.path, "HEAD", A, max_bytes=64)

    assert [v.commit for v in found] == [accented, link, deleted, big, first]
    assert found[0].content == "a: café ☕\n".encode()  # bytes, counted as bytes
    assert found[1].content is None and found[1].problem == "is a symbolic link in git"
    assert found[2].deleted and found[2].content is None and found[2].problem is None
    assert found[3].content is None and found[3].problem == "is 104 bytes, over the limit of 64"
    assert found[4].content == b"a: 1\n" and not found[4].deleted
    assert all(v.landed.tzinfo is not None for v in found)
    assert git.file_history(git_repo.path, first, A, max_bytes=64)[0].commit == first


def test_file_history_follows_the_first_parent_line(git_repo: GitRepo) -> None:
    """A merged branch's version counts once, at the merge: what the branch went through."""
    first = git_repo.commit({A: "a: 1\n"}, "add")
    git_repo.git("checkout", "-q", "-b", "feature")
    git_repo.commit({A: "a: 2\n"}, "on the branch")
    git_repo.git("checkout", "-q", "main")
    git_repo.git("merge", "-q", "--no-ff", "-m", "Merge pull request #7", "feature")
    merged = git_repo.head()

    found = git.file_history(git_repo.path, "main", A, max_bytes=1024)

    assert [(v.commit, v.content) for v in found] == [(merged, b"a: 2\n"), (first, b"a: 1\n")]
    assert git.file_history(git_repo.path, "main", "promotion-requests/none.yaml", 1024) == ()
