"""Approvals by GitHub's rules, in the bot itself: the pure rule, CODEOWNERS, and apply
against the local GitHub server (each attack of issue #9 refused, nothing changed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from conftest import GitRepo, request_yaml

from bot import cli
from bot.adapters.aws import config_store, ssm
from bot.adapters.github import GitHubHost
from bot.core.approvals import (
    ApprovalCount,
    PullCommit,
    PullReviews,
    Push,
    Review,
    count_approvals,
)
from bot.core.codeowners import owners
from bot.core.domain import Plan
from bot.errors import NotApproved
from bot.flows.apply import apply
from bot.local.github import LocalGitHub
from bot.settings import Target, settings

HEAD, OLD = "4d5e6f" + "0" * 34, "1a2b3c" + "0" * 34
PATH = "promotion-requests/fraud-detection.yaml"
REQUEST = request_yaml("exp-xgboost-1")
DANA_PUSHED = Push("dana", None)  # the branch's first push, by its author
DANAS_HEAD = PullCommit(HEAD, "dana", "dana")  # the head, authored and committed by dana


def pull(*reviews: Review, permissions: dict[str, str] | None = None,
         commits: tuple[PullCommit, ...] = (DANAS_HEAD,),
         push: Push | None = DANA_PUSHED) -> PullReviews:
    return PullReviews(7, "dana", HEAD, reviews,
                       permissions if permissions is not None else {
                           "maria": "write", "bob": "admin", "eve": "read", "dana": "write"},
                       commits=commits, last_push=push)


def approved(login: str, commit: str = HEAD, bot: bool = False) -> Review:
    return Review(login, bot, "APPROVED", commit)


def count(*reviews: Review, commits: tuple[PullCommit, ...] = (DANAS_HEAD,),
          push: Push | None = DANA_PUSHED) -> ApprovalCount:
    """The approvals of PR #7 (dana's) with ``reviews``, when one approval is required."""
    return count_approvals(pull(*reviews, commits=commits, push=push), required=1)


# -- the rule --------------------------------------------------------------------------


def test_an_approval_of_the_merged_head_by_a_writer_counts() -> None:
    counted = count(approved("maria"))
    assert counted.approved and counted.approvers == ("maria",)


def test_a_stale_approval_does_not_count() -> None:
    counted = count(approved("maria", OLD))
    assert not counted.approved
    assert counted.refusal() == ("PR #7: approval by maria was given on 1a2b3c0, not the merged "
                                 "head 4d5e6f0; 0 of 1 required approvals")


def test_the_authors_own_approval_does_not_count() -> None:
    counted = count(approved("dana"))
    assert counted.refusal() == ("PR #7: approval by dana does not count: dana opened the pull "
                                 "request; 0 of 1 required approvals")


def test_a_bots_approval_does_not_count() -> None:
    counted = count(approved("github-actions[bot]", bot=True), approved("renovate[bot]"))
    assert not counted.approved
    assert "approval by github-actions[bot] does not count: it is a bot" in counted.refusal()
    assert "approval by renovate[bot] does not count: it is a bot" in counted.refusal()


def test_an_outsiders_approval_does_not_count_and_a_writers_changes_requested_block() -> None:
    counted = count(Review("bob", False, "CHANGES_REQUESTED", OLD), approved("eve"),
                    approved("maria"))
    assert not counted.approved and counted.blocked
    assert counted.approvers == ("maria",)
    assert counted.refusal() == (
        "PR #7: bob requested changes and has not approved since; approval by eve does not "
        "count: eve has read access, not write; 1 of 1 required approvals")


def test_only_the_latest_state_counts() -> None:
    comment = Review("maria", False, "COMMENTED", HEAD)
    assert count(Review("maria", False, "CHANGES_REQUESTED", OLD), approved("maria"),
                 comment).approved
    dismissed = count(approved("maria"), Review("maria", False, "DISMISSED", HEAD))
    assert dismissed.refusal() == ("PR #7: the review by maria was dismissed; 0 of 1 required "
                                   "approvals")
    # A dismissed change request no longer blocks.
    assert count(Review("bob", False, "DISMISSED", HEAD), approved("maria")).approved


# -- who made the most recent push does not approve it ---------------------------------


def test_the_pusher_of_the_most_recent_push_does_not_approve_it() -> None:
    # maria pushes onto dana's pull request (a commit dana wrote), then approves the head.
    commits = (PullCommit(OLD, "dana", "dana"), PullCommit(HEAD, "dana", "dana"))
    by_maria = Push("maria", OLD)
    assert count(approved("maria"), commits=commits, push=by_maria).refusal() == (
        "PR #7: approval by maria does not count: maria pushed the most recent push "
        "(4d5e6f0); it needs an approval by someone else; 0 of 1 required approvals")
    # bob, who had no part in that push, may approve it.
    assert count(approved("maria"), approved("bob"), commits=commits,
                 push=by_maria).approvers == ("bob",)


def test_whoever_authored_or_committed_the_most_recent_push_does_not_approve_it() -> None:
    # dana pushes a commit maria wrote, and one bob committed (a rebase, a cherry-pick).
    first = PullCommit("0" * 39 + "1", "maria", "maria")  # before the push: maria may approve
    pushed = (PullCommit(OLD, "maria", "maria"), PullCommit(HEAD, "dana", "bob"))
    counted = count(approved("maria"), approved("bob"), commits=(first, *pushed),
                    push=Push("dana", first.sha))
    assert not counted.approved
    assert counted.problems == (
        "approval by bob does not count: bob committed commit 4d5e6f0 of the most recent "
        "push (4d5e6f0); it needs an approval by someone else",
        "approval by maria does not count: maria authored commit 1a2b3c0 of the most recent "
        "push (4d5e6f0); it needs an approval by someone else")
    # A commit of an earlier push does not bar its author.
    assert count(approved("maria"), commits=(first, DANAS_HEAD),
                 push=Push("dana", first.sha)).approvers == ("maria",)


def test_a_force_push_or_a_new_branch_brings_all_the_commits() -> None:
    earlier = PullCommit(OLD, "maria", "maria")
    for before in (None, "0" * 40, "9" * 40):  # a new branch; a force push over 9999999
        counted = count(approved("maria"), commits=(earlier, DANAS_HEAD),
                        push=Push("dana", before))
        assert counted.approvers == () and "maria authored commit 1a2b3c0" in counted.refusal()


def test_no_approval_counts_when_the_most_recent_push_is_unknown() -> None:
    counted = count(approved("maria"), push=None)
    assert counted.blocked and counted.approvers == ("maria",)
    assert counted.refusal() == (
        "PR #7: no push of the merged head 4d5e6f0 is known, so who pushed it (who may not "
        "approve it) is unknown; 1 of 1 required approvals")


def test_no_approval_counts_when_the_listed_commits_do_not_reach_the_head() -> None:
    # GitHub lists at most 250 commits of a pull request: the latest are then missing.
    listed = tuple(PullCommit(f"{i:040x}", "dana", "dana") for i in range(1, 251))
    counted = count(approved("maria"), commits=listed)
    assert counted.blocked and counted.refusal() == (
        "PR #7: the pull request's commits as GitHub lists them do not reach its head "
        "4d5e6f0 (it lists at most 250), so who wrote the most recent push is unknown; "
        "1 of 1 required approvals")


def test_required_approvals_is_a_number() -> None:
    assert not count_approvals(pull(approved("maria")), required=2).approved
    assert count_approvals(pull(approved("maria"), approved("bob")),
                           required=2).approvers == ("bob", "maria")


def test_a_code_owner_must_approve_when_codeowners_names_one() -> None:
    both = pull(approved("maria"), approved("bob"))
    assert count_approvals(both, 1, frozenset({"bob"}), "@acme/model-risk").approved
    refused = count_approvals(pull(approved("maria")), 1, frozenset(), "@acme/model-risk")
    assert refused.refusal() == ("PR #7: no approval by a code owner of the request file "
                                 "(@acme/model-risk); 1 of 1 required approvals")


def test_no_review_at_all() -> None:
    assert count().refusal() == "PR #7: no review; 0 of 1 required approvals"


def test_codeowners_last_matching_line_wins() -> None:
    text = ("# owners\n* @everyone\n/promotion-requests/ @acme/model-risk  # the risk team\n"
            "promotion-requests/churn.yaml @carol\ndocs/ @writers\n*.md @docs\n")
    assert owners(text, PATH) == ("@acme/model-risk",)
    assert owners(text, "promotion-requests/churn.yaml") == ("@carol",)
    assert owners(text, "README.md") == ("@docs",)
    assert owners(text, "docs/a/b.txt") == ("@writers",)
    assert owners(text, "src/x.py") == ("@everyone",)
    assert owners("**/fraud-*.yaml @fraud\n/promotion-requests/x.yml\n", PATH) == ("@fraud",)
    assert owners("/promotion-requests/*.yaml @a\n/promotion-requests/ \n", PATH) == ()
    assert owners("other/ @a\n", PATH) == ()


# -- apply on GitHub -------------------------------------------------------------------


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(repository="acme/fraud-models") as server:
        for login, role in (("maria", "write"), ("bob", "admin"), ("dana", "write"),
                            ("eve", "read")):
            server.add_collaborator(login, role)
        yield server


@pytest.fixture
def merged(aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
           github: LocalGitHub) -> tuple[str, str, int]:
    """The request merged by a PR whose reviewed head is the merge's only commit."""
    store_plan(REQUEST)
    return merge_pull_request(git_repo, github, {PATH: REQUEST})


def merge_pull_request(git_repo: GitRepo, github: LocalGitHub,
                       files: dict[str, str | None]) -> tuple[str, str, int]:
    """dana's pull request of one commit writing ``files``, merged into main (``--no-ff``):
    main before and after the merge, and the pull request's number."""
    before = git_repo.head()
    git_repo.git("checkout", "-q", "-b", "promote")
    head = git_repo.commit(files, "Promote")
    git_repo.git("checkout", "-q", "main")
    git_repo.git("merge", "-q", "--no-ff", "promote", "-m", "Merge pull request #1")
    pr = github.open_pull(head_sha=head, author="dana", title="Promote", base_sha=before)
    return before, git_repo.head(), pr


def host(github: LocalGitHub) -> GitHubHost:
    """The bot's view of ``github``, with the app's token."""
    return GitHubHost(github.token, github.repository, github.url)


def refused(git_repo: GitRepo, merged: tuple[str, str, int], github: LocalGitHub,
            aws: Target, capsys: pytest.CaptureFixture[str]) -> str:
    """Merge, apply: refused with one line and nothing changed; returns the line."""
    before, after, pr = merged
    github.merge_pull(pr, after)
    with pytest.raises(NotApproved) as caught:
        apply(git_repo.path, before, after, host(github))
    assert ssm.read(aws) == {} and config_store.read(aws) is None
    assert github.comments(pr) == [] and github.statuses(after) == []
    env = {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": github.repository,
           "GITHUB_API_URL": github.url}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        capsys.readouterr()
        assert cli.main(["apply", "--repo", str(git_repo.path), "--before", before,
                         "--after", after]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ssm.read(aws) == {}
    return caught.value.message


def test_stale_approval_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, github: LocalGitHub,
        merged: tuple[str, str, int], capsys: pytest.CaptureFixture[str]) -> None:
    pr = merged[2]
    head = git_repo.git("rev-parse", "promote")
    github.set_head(pr, "f" * 40)  # what the branch held when maria approved
    github.review(pr, "maria", "APPROVED")
    github.set_head(pr, head)  # a later push (100 % traffic, a lower gate...) was merged
    message = refused(git_repo, merged, github, aws, capsys)
    assert message == (f"{PATH}: PR #{pr}: approval by maria was given on fffffff, not the "
                       f"merged head {head[:7]}; 0 of 1 required approvals; nothing was applied")


def test_self_approval_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, github: LocalGitHub,
        merged: tuple[str, str, int], capsys: pytest.CaptureFixture[str]) -> None:
    github.review(merged[2], "dana", "APPROVED")
    assert "approval by dana does not count: dana opened the pull request; 0 of 1" in refused(
        git_repo, merged, github, aws, capsys)


def test_bot_approval_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, github: LocalGitHub,
        merged: tuple[str, str, int], capsys: pytest.CaptureFixture[str]) -> None:
    github.add_collaborator("github-actions[bot]", "write")
    github.review(merged[2], "github-actions[bot]", "APPROVED")
    assert "approval by github-actions[bot] does not count: it is a bot; 0 of 1" in refused(
        git_repo, merged, github, aws, capsys)


def test_outstanding_changes_requested_refuse_at_apply(
        aws: Target, git_repo: GitRepo, github: LocalGitHub,
        merged: tuple[str, str, int], capsys: pytest.CaptureFixture[str]) -> None:
    github.review(merged[2], "bob", "CHANGES_REQUESTED")
    github.review(merged[2], "eve", "APPROVED")
    github.review(merged[2], "mallory", "APPROVED")  # not a collaborator at all
    message = refused(git_repo, merged, github, aws, capsys)
    assert message == (
        f"{PATH}: PR #{merged[2]}: bob requested changes and has not approved since; approval "
        "by eve does not count: eve has read access, not write; approval by mallory does not "
        "count: mallory has none access, not write; 0 of 1 required approvals; nothing was "
        "applied")


def test_codeowners_on_the_base_require_a_code_owners_approval(
        aws: Target, git_repo: GitRepo, github: LocalGitHub, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    git_repo.commit({".github/CODEOWNERS": "/promotion-requests/ @acme/model-risk\n"},
                    "Code owners")
    store_plan(REQUEST)
    # The branch tries to name its own owners: GitHub (and apply) read the base's file.
    before, after, pr = merge_pull_request(
        git_repo, github, {PATH: REQUEST, ".github/CODEOWNERS": "* @maria\n"})
    github.review(pr, "maria", "APPROVED")
    message = refused(git_repo, (before, after, pr), github, aws, capsys)
    assert "no approval by a code owner of the request file (@acme/model-risk); 1 of 1" in message

    github.add_team_member("acme/model-risk", "bob")
    github.review(pr, "bob", "APPROVED")
    [outcome] = apply(git_repo.path, before, after, host(github))
    assert outcome.approval.approvers == ("bob", "maria")
    config = config_store.read(aws)
    assert config is not None and config.approvers == ["bob", "maria"]


def test_two_approvals_when_the_setting_says_so(
        aws: Target, git_repo: GitRepo, github: LocalGitHub, merged: tuple[str, str, int],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROMOTION_BOT_REQUIRED_APPROVALS", "2")
    settings.cache_clear()
    try:
        github.review(merged[2], "maria", "APPROVED")
        assert refused(git_repo, merged, github, aws, capsys).endswith(
            "1 of 2 required approvals; nothing was applied")
        github.review(merged[2], "bob", "APPROVED")
        [outcome] = apply(git_repo.path, merged[0], merged[1], host(github))
        assert outcome.approval.approvers == ("bob", "maria")
    finally:
        settings.cache_clear()


def test_a_writer_who_pushes_onto_someone_elses_pull_request_cannot_approve_it(
        aws: Target, git_repo: GitRepo, github: LocalGitHub, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    # dana opens a pull request; maria, a writer, pushes her own change onto it and approves
    # the head: GitHub wants the most recent push approved by someone other than its pusher.
    store_plan(REQUEST)
    before = git_repo.head()
    git_repo.git("checkout", "-q", "-b", "promote")
    first = git_repo.commit({PATH: request_yaml("exp-xgboost-0")}, "Promote")
    pr = github.open_pull(head_sha=first, author="dana", title="Promote", head_ref="promote")
    head = git_repo.commit({PATH: REQUEST}, "A better one",
                           author="Maria Risk <maria@example.com>")
    github.set_head(pr, head, "maria")
    git_repo.git("checkout", "-q", "main")
    git_repo.git("merge", "-q", "--no-ff", "promote", "-m", "Merge pull request #1")
    after = git_repo.head()
    github.review(pr, "maria", "APPROVED")
    message = refused(git_repo, (before, after, pr), github, aws, capsys)
    assert message == (
        f"{PATH}: PR #{pr}: approval by maria does not count: maria pushed the most recent "
        f"push ({head[:7]}); it needs an approval by someone else; 0 of 1 required approvals; "
        "nothing was applied")

    github.review(pr, "bob", "APPROVED")  # someone with no part in that push
    [outcome] = apply(git_repo.path, before, after, host(github))
    assert outcome.approval.approvers == ("bob",)


def test_pushing_someone_elses_commit_still_makes_you_the_pusher(
        aws: Target, git_repo: GitRepo, github: LocalGitHub, merged: tuple[str, str, int],
        capsys: pytest.CaptureFixture[str]) -> None:
    # The head is dana's commit, but maria pushed it (a force push of the branch).
    pr = merged[2]
    head = git_repo.git("rev-parse", "promote")
    github.set_head(pr, head, "maria", author="dana", force=True)
    github.review(pr, "maria", "APPROVED")
    assert f"maria pushed the most recent push ({head[:7]})" in refused(
        git_repo, merged, github, aws, capsys)


def test_codeowners_are_read_on_the_base_as_merged_not_as_opened(
        aws: Target, git_repo: GitRepo, github: LocalGitHub, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(REQUEST)
    before = git_repo.head()
    git_repo.git("checkout", "-q", "-b", "promote")
    head = git_repo.commit({PATH: REQUEST}, "Promote")
    pr = github.open_pull(head_sha=head, author="dana", title="Promote", base_sha=before)
    # After the pull request was opened, main gets a CODEOWNERS line for the requests.
    git_repo.git("checkout", "-q", "main")
    git_repo.commit({".github/CODEOWNERS": "/promotion-requests/ @acme/model-risk\n"},
                    "Code owners")
    git_repo.git("merge", "-q", "--no-ff", "promote", "-m", "Merge pull request #1")
    after = git_repo.head()
    github.review(pr, "maria", "APPROVED")  # a writer, not in the team
    message = refused(git_repo, (before, after, pr), github, aws, capsys)
    assert "no approval by a code owner of the request file (@acme/model-risk); 1 of 1" in message


def test_an_actions_token_cannot_check_a_code_owner_team_and_apply_says_so(
        aws: Target, git_repo: GitRepo, github: LocalGitHub, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    # GitHub never lets the Actions GITHUB_TOKEN read an organization's teams: apply run with
    # it cannot count a team code owner's approval, and refuses saying why, changing nothing.
    git_repo.commit({".github/CODEOWNERS": "/promotion-requests/ @acme/model-risk\n"},
                    "Code owners")
    store_plan(REQUEST)
    before, after, pr = merge_pull_request(git_repo, github, {PATH: REQUEST})
    github.add_team_member("acme/model-risk", "maria")
    github.review(pr, "maria", "APPROVED")
    github.merge_pull(pr, after)
    github.add_token("ghs_actions", "actions", permissions={"pull_requests": "write",
                                                           "statuses": "write"})
    argv = ["apply", "--repo", str(git_repo.path), "--before", before, "--after", after]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"GITHUB_TOKEN": "ghs_actions", "GITHUB_API_URL": github.url,
                            "GITHUB_REPOSITORY": github.repository}.items():
            patch.setenv(name, value)
        capsys.readouterr()
        assert cli.main(argv) != 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1
        assert ("GitHub refused to say whether maria is in @acme/model-risk (403: Resource not "
                "accessible by integration)") in err
        assert ssm.read(aws) == {} and config_store.read(aws) is None
        patch.setenv("GITHUB_TOKEN", github.token)  # the app's token, with members: read
        assert cli.main(argv) == 0
    config = config_store.read(aws)
    assert config is not None and config.approvers == ["maria"]


def test_a_rebase_merge_cannot_name_its_own_code_owners(
        aws: Target, git_repo: GitRepo, github: LocalGitHub, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    # Rebased onto main, the pull request's first commit (its own CODEOWNERS) becomes the
    # merge commit's first parent: the base as merged is two commits back, and its code
    # owners must approve too.
    git_repo.commit({".github/CODEOWNERS": "/promotion-requests/ @acme/model-risk\n"},
                    "Code owners")
    store_plan(REQUEST)
    before = git_repo.head()
    git_repo.git("checkout", "-q", "-b", "promote")
    own = git_repo.commit({".github/CODEOWNERS": "* @maria\n"}, "Owners")
    head = git_repo.commit({PATH: REQUEST}, "Promote")
    pr = github.open_pull(head_sha=own, author="dana", title="Promote", base_sha=before)
    github.set_head(pr, head)
    git_repo.git("checkout", "-q", "main")
    git_repo.git("cherry-pick", own, head)  # what "Rebase and merge" makes on main
    after = git_repo.head()
    github.review(pr, "maria", "APPROVED")
    message = refused(git_repo, (before, after, pr), github, aws, capsys)
    assert message == (
        f"{PATH}: PR #{pr}: no approval by a code owner of the request file "
        "(@acme/model-risk); 1 of 1 required approvals; nothing was applied")

    github.add_team_member("acme/model-risk", "bob")
    github.review(pr, "bob", "APPROVED")
    [outcome] = apply(git_repo.path, before, after, host(github))
    assert outcome.approval.approvers == ("bob", "maria")
