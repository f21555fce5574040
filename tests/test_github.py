"""The code host adapter, driven through PyGithub against the local GitHub server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.github import GitHubHost, RateLimited, comment_marker
from bot.adapters.workflow_event import (
    pr_head_from_event,
    pr_number_from_event,
    push_range_from_event,
)
from bot.core.approvals import count_approvals
from bot.errors import BotError
from bot.local.faults import FaultPlan, Rule
from bot.local.github import LocalGitHub

TOKEN = "ghs_local-secret-token-0123456789"
REPO = "acme/fraud-models"
HEAD = "a" * 40
MERGE = "b" * 40
#: Requests that create something (GraphQL's POST, which asks who the token is, reads).
WRITES = "POST /repos/"


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(token=TOKEN, repository=REPO) as server:
        server.add_commit(HEAD, "dana")
        yield server


@pytest.fixture
def host(github: LocalGitHub) -> GitHubHost:
    return GitHubHost(TOKEN, REPO, base_url=github.url)


@pytest.fixture
def pr(github: LocalGitHub) -> int:
    return github.open_pull(head_sha=HEAD, author="dana", title="Promote exp-42")


def bot_comments(github: LocalGitHub, pr: int) -> list[str]:
    return [c["body"] for c in github.comments(pr) if c["user"]["login"] == github.bot_login]


def test_second_plan_edits_the_first_comment_instead_of_adding_one(
        github: LocalGitHub, host: GitHubHost, pr: int) -> None:
    first = host.upsert_comment(pr, "fraud-detection", "accuracy 0.91")
    second = host.upsert_comment(pr, "fraud-detection", "accuracy 0.93")

    assert first == second
    assert bot_comments(github, pr) == [f"{comment_marker('fraud-detection')}\naccuracy 0.93"]
    assert sum(line.startswith(WRITES) for line in github.request_log()) == 1
    assert any(line.startswith("PATCH ") for line in github.request_log())


def test_unchanged_comment_is_not_rewritten(github: LocalGitHub, host: GitHubHost,
                                            pr: int) -> None:
    host.upsert_comment(pr, "fraud-detection", "same plan")
    host.upsert_comment(pr, "fraud-detection", "same plan")

    assert not any(line.startswith("PATCH ") for line in github.request_log())
    assert len(bot_comments(github, pr)) == 1


def test_each_target_keeps_its_own_comment(github: LocalGitHub, host: GitHubHost,
                                           pr: int) -> None:
    fraud = host.upsert_comment(pr, "fraud-detection", "fraud plan v1")
    churn = host.upsert_comment(pr, "churn", "churn plan v1")
    assert host.upsert_comment(pr, "fraud-detection", "fraud plan v2") == fraud

    bodies = {c["id"]: c["body"] for c in github.comments(pr)}
    assert fraud != churn
    assert bodies == {
        fraud: f"{comment_marker('fraud-detection')}\nfraud plan v2",
        churn: f"{comment_marker('churn')}\nchurn plan v1",
    }


def test_a_human_quoting_the_marker_is_left_alone(github: LocalGitHub, host: GitHubHost,
                                                  pr: int) -> None:
    quote = f"why did this fail?\n> {comment_marker('fraud-detection')}"
    human = github.add_comment(pr, quote, user="dana")

    ours = host.upsert_comment(pr, "fraud-detection", "plan")

    assert ours != human
    assert [c["body"] for c in github.comments(pr) if c["id"] == human] == [quote]


def test_the_bot_knows_its_comment_by_its_own_identity_only(github: LocalGitHub,
                                                             pr: int) -> None:
    # A pull request's own workflow may comment as github-actions[bot] (and another app as
    # itself) with the bot's marker: the bot edits only a comment of its own identity.
    # GitHub refuses GET /user to an installation token; the GraphQL viewer names it.
    actions = "ghs_actions-token-of-a-pull-request-workflow"
    github.add_token(actions, "actions", permissions={"pull_requests": "write"})
    github.add_token("ghs_other-app", "app", "other-app[bot]")
    forged = f"{comment_marker('fraud-detection')}\nall gates pass (forged)"
    for token in (actions, "ghs_other-app"):
        GitHubHost(token, REPO, base_url=github.url).upsert_comment(pr, "fraud-detection",
                                                                    "all gates pass (forged)")
    host = GitHubHost(TOKEN, REPO, base_url=github.url)

    ours = host.upsert_comment(pr, "fraud-detection", "v1")
    assert host.upsert_comment(pr, "fraud-detection", "v2") == ours

    assert [(c["user"]["login"], c["body"]) for c in github.comments(pr)] == [
        ("github-actions[bot]", forged), ("other-app[bot]", forged),
        ("promotion-bot[bot]", f"{comment_marker('fraud-detection')}\nv2")]
    assert "GET /user" not in github.request_log()
    assert "POST /graphql" in github.request_log()


def test_the_apps_slug_setting_names_the_bot_without_asking(
        github: LocalGitHub, pr: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import settings

    monkeypatch.setenv("PROMOTION_BOT_APP_SLUG", "promotion-bot")
    settings.cache_clear()
    try:
        host = GitHubHost(TOKEN, REPO, base_url=github.url)
        first = host.upsert_comment(pr, "fraud-detection", "v1")
        assert host.upsert_comment(pr, "fraud-detection", "v2") == first
        monkeypatch.setenv("PROMOTION_BOT_APP_SLUG", "another-app")
        settings.cache_clear()
        other = GitHubHost(TOKEN, REPO, base_url=github.url)
        assert other.upsert_comment(pr, "fraud-detection", "v3") != first  # not its comment
    finally:
        settings.cache_clear()
    assert "POST /graphql" not in github.request_log()


def test_an_unknown_commit_is_refused_as_github_does(github: LocalGitHub,
                                                     host: GitHubHost) -> None:
    with pytest.raises(BotError) as caught:
        host.set_status("c" * 40, "promotion-bot/plan", "success", "ok")
    assert caught.value.message == (
        "GitHub refused status promotion-bot/plan of commit cccccccccccc in acme/fraud-models "
        f"(422: No commit found for SHA: {'c' * 40})")
    with pytest.raises(BotError, match="422: No commit found"):
        host.pull_for_commit("c" * 40)


def test_the_actions_token_cannot_read_team_membership(github: LocalGitHub) -> None:
    # An Actions GITHUB_TOKEN never reads an organization's teams: GitHub answers 403, and
    # the bot says so instead of counting a code owner's approval as missing.
    github.add_token("ghs_actions", "actions", permissions={"pull_requests": "write"})
    github.add_team_member("acme/model-risk", "maria")
    with pytest.raises(BotError) as caught:
        GitHubHost("ghs_actions", REPO, base_url=github.url).is_team_member(
            "acme/model-risk", "maria")
    assert caught.value.message == (
        "GitHub refused to say whether maria is in @acme/model-risk (403: Resource not "
        "accessible by integration): code-owner teams are checked with a token that may read "
        "the organization's members (the promotion-bot app's, with members: read; the Actions "
        "GITHUB_TOKEN cannot)")
    github.add_token("ghs_no_members", "app", "promotion-bot[bot]",
                     {"pull_requests": "write", "statuses": "write"})
    with pytest.raises(BotError, match="403"):
        GitHubHost("ghs_no_members", REPO, base_url=github.url).is_team_member(
            "acme/model-risk", "maria")


def test_comment_found_on_a_later_page(github: LocalGitHub, host: GitHubHost, pr: int) -> None:
    for i in range(75):
        github.add_comment(pr, f"discussion {i}", user="dana")
    ours = host.upsert_comment(pr, "fraud-detection", "v1")  # the 76th: on page 3 of 30

    assert host.upsert_comment(pr, "fraud-detection", "v2") == ours
    assert bot_comments(github, pr) == [f"{comment_marker('fraud-detection')}\nv2"]
    assert sum(line.startswith(WRITES) for line in github.request_log()) == 1
    assert any("page=3" in line for line in github.request_log())


def test_oversized_comment_is_cut_to_what_github_accepts(github: LocalGitHub, host: GitHubHost,
                                                         pr: int) -> None:
    host.upsert_comment(pr, "fraud-detection", "x" * 70_000)

    (body,) = bot_comments(github, pr)
    assert len(body) <= 65_536
    assert body.startswith(comment_marker("fraud-detection"))
    assert "truncated" in body


def test_status_is_recorded_with_description_cut_to_140(github: LocalGitHub,
                                                        host: GitHubHost) -> None:
    host.set_status(HEAD, "promotion-bot/plan", "pending", "training the candidate")
    host.set_status(HEAD, "promotion-bot/plan", "success", "gates passed " + "." * 200,
                    target_url="https://example.invalid/run/1")

    statuses = github.statuses(HEAD)
    assert [(s["context"], s["state"]) for s in statuses] == [
        ("promotion-bot/plan", "pending"), ("promotion-bot/plan", "success")]
    assert statuses[0]["target_url"] is None
    assert statuses[1]["target_url"] == "https://example.invalid/run/1"
    assert len(statuses[1]["description"]) == 140
    assert statuses[1]["description"].startswith("gates passed")


def test_status_state_must_be_one_github_knows(host: GitHubHost) -> None:
    with pytest.raises(ValueError, match="state"):
        host.set_status(HEAD, "promotion-bot/plan", "passed", "nope")


def approvers(host: GitHubHost, pr: int) -> tuple[str, ...]:
    return count_approvals(host.pull_reviews(pr), required=1).approvers


def test_later_changes_requested_cancels_an_approval(github: LocalGitHub, host: GitHubHost,
                                                     pr: int) -> None:
    for login in ("erin", "frank", "gus"):
        github.add_collaborator(login)
    github.review(pr, "erin", "APPROVED")
    github.review(pr, "frank", "APPROVED")
    github.review(pr, "erin", "CHANGES_REQUESTED")
    github.review(pr, "frank", "COMMENTED")  # a comment keeps frank's approval
    github.review(pr, "gus", "COMMENTED")

    assert approvers(host, pr) == ("frank",)

    github.review(pr, "erin", "APPROVED")
    assert approvers(host, pr) == ("erin", "frank")


def test_dismissed_approval_does_not_count(github: LocalGitHub, host: GitHubHost,
                                           pr: int) -> None:
    github.add_collaborator("zoe")
    github.add_collaborator("adam", "maintain")
    github.review(pr, "zoe", "APPROVED")
    github.review(pr, "adam", "APPROVED")
    github.review(pr, "zoe", "DISMISSED")

    assert approvers(host, pr) == ("adam",)


def test_reviews_carry_what_judging_them_needs(github: LocalGitHub, host: GitHubHost,
                                               pr: int) -> None:
    github.add_collaborator("maria", "maintain")
    github.add_collaborator("tom", "triage")
    github.review(pr, "maria", "APPROVED")
    github.set_head(pr, "c" * 40)
    github.review(pr, "tom", "APPROVED")
    github.review(pr, "github-actions[bot]", "APPROVED")

    pull = host.pull_reviews(pr)

    assert (pull.number, pull.author, pull.head_sha) == (pr, "dana", "c" * 40)
    assert [(r.login, r.bot, r.state, r.commit_id) for r in pull.reviews] == [
        ("maria", False, "APPROVED", HEAD), ("tom", False, "APPROVED", "c" * 40),
        ("github-actions[bot]", True, "APPROVED", "c" * 40)]
    # GitHub reports maintain as write and triage as read; bots are not looked up.
    assert pull.permissions == {"maria": "write", "tom": "read"}
    assert not any("github-actions" in line for line in github.request_log()
                   if "/collaborators/" in line)


def test_team_membership(github: LocalGitHub, host: GitHubHost) -> None:
    github.add_team_member("acme/model-risk", "maria")

    assert host.is_team_member("acme/model-risk", "maria") is True
    assert host.is_team_member("acme/model-risk", "dana") is False
    assert host.is_team_member("acme/other", "maria") is False
    assert "GET /orgs/acme/teams/model-risk/memberships/maria" in github.request_log()


def test_merged_pull_of_a_commit(github: LocalGitHub, host: GitHubHost, pr: int) -> None:
    github.add_commit(MERGE)
    assert host.pull_for_commit(MERGE) is None
    assert host.pull_for_commit(HEAD) is None  # open, not merged yet

    github.merge_pull(pr, MERGE)

    assert host.pull_for_commit(MERGE) == pr
    assert host.pull_for_commit(HEAD) == pr
    github.add_commit("c" * 40)
    assert host.pull_for_commit("c" * 40) is None


def test_pull_author(host: GitHubHost, pr: int) -> None:
    assert host.pull_reviews(pr).author == "dana"


def test_wrong_token_is_a_clear_error_without_the_token(github: LocalGitHub, pr: int) -> None:
    wrong = "ghp_wrong-token-must-not-leak-987654"
    host = GitHubHost(wrong, REPO, base_url=github.url)

    with pytest.raises(BotError) as caught:
        host.upsert_comment(pr, "fraud-detection", "plan")

    message = caught.value.message
    assert "401" in message and "token" in message
    assert wrong not in message and wrong not in repr(host) and wrong not in str(caught.value)
    assert "\n" not in message
    assert github.comments(pr) == []


def test_missing_pull_request_is_a_clear_error(host: GitHubHost) -> None:
    with pytest.raises(BotError, match=r"pull request #404 not found in acme/fraud-models"):
        host.pull_reviews(404)


def test_unknown_repository_is_a_clear_error(github: LocalGitHub) -> None:
    host = GitHubHost(TOKEN, "acme/nope", base_url=github.url)
    with pytest.raises(BotError, match=r"not found in acme/nope \(404"):
        host.pull_reviews(1)


def test_a_passing_server_error_is_retried(github: LocalGitHub, pr: int) -> None:
    host = GitHubHost(TOKEN, REPO, base_url=github.url, backoff=0.01)
    github.fail_next(502)
    github.add_collaborator("erin")
    github.review(pr, "erin", "APPROVED")

    assert approvers(host, pr) == ("erin",)


def test_an_outage_is_a_clear_error(github: LocalGitHub, pr: int) -> None:
    github.fail_next(503, count=10)
    host = GitHubHost(TOKEN, REPO, base_url=github.url, backoff=0.01, attempts=3)

    with pytest.raises(BotError, match=r"GitHub failed on reviews of pull request #1 in "
                                       r"acme/fraud-models \(503: Server Error, 3 tries\)"):
        host.pull_reviews(pr)
    assert len(github.request_log()) == 3


def test_a_comment_whose_answer_was_lost_is_not_made_twice(github: LocalGitHub,
                                                            pr: int) -> None:
    # GitHub made the comment, then the answer was lost (502): the upsert runs again, finds
    # the comment by its marker and leaves one.
    github.inject(FaultPlan(rules=(Rule(service="github",
                                        operation="POST /repos/*/issues/*/comments",
                                        kind="server-error", after=True, times=1),)))
    host = GitHubHost(TOKEN, REPO, base_url=github.url, backoff=0.01)

    first = host.upsert_comment(pr, "fraud-detection", "plan")

    assert bot_comments(github, pr) == [f"{comment_marker('fraud-detection')}\nplan"]
    assert first == github.comments(pr)[0]["id"]
    assert sum(line.startswith(WRITES) for line in github.request_log()) == 1


def test_a_secondary_rate_limit_on_a_status_is_waited_out_and_the_status_set(
        github: LocalGitHub) -> None:
    injector = github.inject(FaultPlan(rules=(Rule(
        service="github", operation="POST /repos/*/statuses/*", kind="rate-limit",
        limit="secondary", retry_after=1, times=1),)))
    host = GitHubHost(TOKEN, REPO, base_url=github.url)

    host.set_status(HEAD, "promotion-bot/plan", "success", "all gates pass")

    assert injector is not None and len(injector.injected()) == 1
    assert [s["state"] for s in github.statuses(HEAD)] == ["success"]
    assert sum(line.startswith(WRITES) for line in github.request_log()) == 2
    assert host.waited == 1.0  # as Retry-After asked


def test_a_primary_rate_limit_waits_for_the_reset(github: LocalGitHub, pr: int) -> None:
    github.review(pr, "erin", "APPROVED")
    github.inject(FaultPlan(rules=(Rule(service="github", operation="GET *", kind="rate-limit",
                                        limit="primary", reset_in=1, times=1),)))
    host = GitHubHost(TOKEN, REPO, base_url=github.url)

    assert [r.login for r in host.pull_reviews(pr).reviews] == ["erin"]
    assert 1.0 <= host.waited <= 3.0  # until X-RateLimit-Reset (whole seconds), plus one


def test_a_secondary_rate_limit_without_retry_after_waits_longer_each_time(
        github: LocalGitHub, pr: int) -> None:
    github.inject(FaultPlan(rules=(Rule(service="github", operation="GET *", kind="rate-limit",
                                        times=2),)))
    host = GitHubHost(TOKEN, REPO, base_url=github.url, secondary_wait=0.05)

    assert host.pull_reviews(pr).author == "dana"
    assert host.waited == pytest.approx(0.05 + 0.1)


@pytest.mark.parametrize(("limit", "asked"), [("secondary", "3600"), ("primary", "3601")])
def test_a_rate_limit_longer_than_the_cap_is_a_rate_limit_error_at_once(
        github: LocalGitHub, pr: int, limit: str, asked: str) -> None:
    github.inject(FaultPlan(rules=(Rule(service="github", operation="POST *", kind="rate-limit",
                                        limit=limit, retry_after=3600, reset_in=3600),)))
    host = GitHubHost(TOKEN, REPO, base_url=github.url, max_wait=300)

    with pytest.raises(RateLimited) as caught:
        host.set_status(HEAD, "promotion-bot/apply", "success", "applied")

    message = caught.value.message
    assert f"GitHub {limit} rate limit on status promotion-bot/apply of commit" in message
    assert f"wait {asked} s" in message and "300 s wait cap" in message
    assert "PROMOTION_BOT_GITHUB_MAX_WAIT_SECONDS" in message
    assert "permission" not in message and "\n" not in message and TOKEN not in message
    assert host.waited == 0
    assert sum(line.startswith(WRITES) for line in github.request_log()) == 1


def test_the_wait_cap_holds_for_all_calls_of_a_run_together(github: LocalGitHub,
                                                            pr: int) -> None:
    limited = FaultPlan(rules=(Rule(service="github", operation="GET *", kind="rate-limit",
                                    retry_after=1, times=1),))
    host = GitHubHost(TOKEN, REPO, base_url=github.url, max_wait=1.5)

    github.inject(limited)
    assert host.pull_reviews(pr).author == "dana"  # waits 1 s of the 1.5
    github.inject(limited)
    with pytest.raises(RateLimited, match=r"more than the 0.5 s left of this run's 1.5 s wait cap"):
        host.pull_reviews(pr)


def test_a_refusal_that_is_not_a_rate_limit_is_not_retried(github: LocalGitHub) -> None:
    github.inject(FaultPlan(rules=(Rule(service="github", operation="POST *", kind="error",
                                        status=403,
                                        message="Resource not accessible by integration"),)))
    host = GitHubHost(TOKEN, REPO, base_url=github.url)

    with pytest.raises(BotError, match="the token may lack a permission"):
        host.set_status(HEAD, "promotion-bot/plan", "pending", "planning")
    assert sum(line.startswith(WRITES) for line in github.request_log()) == 1


def test_unreachable_github_is_a_clear_error() -> None:
    server = LocalGitHub(token=TOKEN).start()
    url = server.url
    server.stop()

    with pytest.raises(BotError, match=r"cannot reach .* \(ConnectionError, 3 tries\)"):
        GitHubHost(TOKEN, REPO, base_url=url, attempts=3, backoff=0.01).pull_reviews(1)


def test_from_env_needs_token_and_repository() -> None:
    assert GitHubHost.from_env({}) is None
    assert GitHubHost.from_env({"GITHUB_TOKEN": TOKEN}) is None
    assert GitHubHost.from_env({"GITHUB_REPOSITORY": REPO}) is None

    host = GitHubHost.from_env({"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO,
                                "GITHUB_API_URL": "https://ghe.example.invalid/api/v3"})
    assert host is not None
    assert (host.repository, host.base_url) == (REPO, "https://ghe.example.invalid/api/v3")
    assert TOKEN not in repr(host)
    default = GitHubHost.from_env({"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO})
    assert default is not None and default.base_url == "https://api.github.com"


def test_from_env_reaches_the_local_server(github: LocalGitHub, pr: int) -> None:
    host = GitHubHost.from_env({"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO,
                                "GITHUB_API_URL": github.url})
    assert host is not None
    assert host.pull_reviews(pr).author == "dana"


def test_bad_repository_name_is_a_clear_error() -> None:
    with pytest.raises(BotError, match="OWNER/NAME"):
        GitHubHost(TOKEN, "fraud-models")


def write_event(tmp_path: Path, event: object) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return {"GITHUB_EVENT_PATH": str(path)}


def test_pull_request_number_from_the_event(tmp_path: Path) -> None:
    env = write_event(tmp_path, {"action": "synchronize", "number": 7,
                                 "pull_request": {"number": 7, "head": {"sha": HEAD}}})
    assert pr_number_from_event(env) == 7
    assert pr_number_from_event(write_event(tmp_path, {"ref": "refs/heads/main"})) is None
    assert pr_number_from_event({}) is None
    assert pr_number_from_event({"GITHUB_EVENT_PATH": str(tmp_path / "missing.json")}) is None


def test_pull_request_head_from_the_event(tmp_path: Path) -> None:
    env = write_event(tmp_path, {"pull_request": {"number": 7, "head": {"sha": HEAD}}})
    assert pr_head_from_event(env) == HEAD
    assert pr_head_from_event(write_event(tmp_path, {"before": HEAD, "after": MERGE})) is None
    assert pr_head_from_event({}) is None


def test_push_range_from_the_event(tmp_path: Path) -> None:
    assert push_range_from_event(write_event(tmp_path, {"before": HEAD, "after": MERGE})) == (
        HEAD, MERGE)
    assert push_range_from_event(write_event(tmp_path, {"before": "0" * 40, "after": MERGE})
                                 ) is None
    assert push_range_from_event(write_event(tmp_path, {"pull_request": {"number": 1}})) is None
    assert push_range_from_event({}) is None


def test_unreadable_event_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text("{not json")
    with pytest.raises(BotError, match=r"event\.json: cannot read the GitHub event"):
        push_range_from_event({"GITHUB_EVENT_PATH": str(path)})
