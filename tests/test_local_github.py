"""The local GitHub server speaks the REST shapes and rules the adapter relies on."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bot.local.github import LocalGitHub

TOKEN = "local-token"
REPO = "acme/fraud-models"
SHA = "d" * 40


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(token=TOKEN, repository=REPO) as server:
        server.add_commit(SHA, "dana")
        yield server


def call(github: LocalGitHub, method: str, path: str, body: Any = None,
         auth: str | None = f"token {TOKEN}") -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(github.url + path, data=data, method=method)
    if auth:
        request.add_header("Authorization", auth)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read()), dict(error.headers)


def test_requests_without_the_token_are_refused(github: LocalGitHub) -> None:
    assert call(github, "GET", f"/repos/{REPO}", auth=None)[:2] == (
        401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
              "status": "401"})
    assert call(github, "GET", f"/repos/{REPO}", auth="token nope")[0] == 401
    assert call(github, "GET", f"/repos/{REPO}", auth=f"Bearer {TOKEN}")[0] == 200
    assert call(github, "GET", f"/repos/{REPO}", auth=f"bearer {TOKEN}")[0] == 200


def test_repository_and_unknown_paths(github: LocalGitHub) -> None:
    status, repo, _ = call(github, "GET", f"/repos/{REPO}")
    assert status == 200
    assert repo["full_name"] == REPO and repo["url"] == f"{github.url}/repos/{REPO}"
    assert repo["owner"]["login"] == "acme"
    assert call(github, "GET", "/repos/acme/other")[0] == 404
    assert call(github, "GET", f"/repos/{REPO}/pulls/1")[0] == 404
    assert call(github, "GET", f"/repos/{REPO}/nothing-here")[0] == 404


def test_user_answers_a_users_token_and_refuses_integration_tokens(github: LocalGitHub
                                                                    ) -> None:
    github.add_token("ghp_maria", "user", "maria")
    github.add_token("ghs_actions", "actions")
    assert call(github, "GET", "/user", auth="token ghp_maria")[1]["login"] == "maria"
    for token in (TOKEN, "ghs_actions"):  # the app's installation token, GITHUB_TOKEN
        status, body, _ = call(github, "GET", "/user", auth=f"token {token}")
        assert (status, body["message"]) == (403, "Resource not accessible by integration")
    viewer = {"query": "query { viewer { login } }", "variables": {}}
    for token, login in ((TOKEN, "promotion-bot[bot]"), ("ghs_actions", "github-actions[bot]"),
                         ("ghp_maria", "maria")):
        assert call(github, "POST", "/graphql", viewer, auth=f"token {token}")[1] == {
            "data": {"viewer": {"login": login}}}


def test_each_token_may_do_what_its_kind_and_permissions_allow(github: LocalGitHub) -> None:
    pr = github.open_pull(head_sha=SHA, author="dana", title="t")
    github.add_team_member("acme/model-risk", "maria")
    github.add_token("ghs_read", "actions")  # a job with contents: read only
    github.add_token("ghs_job", "actions", permissions={"pull_requests": "write",
                                                        "statuses": "write", "members": "read"})
    team = "/orgs/acme/teams/model-risk/memberships/maria"
    assert call(github, "GET", team)[0] == 200  # the app has members: read
    for token in ("ghs_read", "ghs_job"):  # GITHUB_TOKEN never reads an organization's teams
        status, body, _ = call(github, "GET", team, auth=f"token {token}")
        assert (status, body["message"]) == (403, "Resource not accessible by integration")
    status_url, comments = f"/repos/{REPO}/statuses/{SHA}", f"/repos/{REPO}/issues/{pr}/comments"
    assert call(github, "POST", status_url, {"state": "success"}, "token ghs_read")[0] == 403
    assert call(github, "POST", comments, {"body": "x"}, "token ghs_read")[0] == 403
    assert call(github, "GET", f"/repos/{REPO}/pulls/{pr}", auth="token ghs_read")[0] == 403
    assert call(github, "GET", f"/repos/{REPO}", auth="token ghs_read")[0] == 200
    created = call(github, "POST", status_url, {"state": "success"}, "token ghs_job")[1]
    assert created["creator"]["login"] == "github-actions[bot]"
    assert call(github, "POST", comments, {"body": "x"}, "token ghs_job")[1]["user"][
        "login"] == "github-actions[bot]"
    with pytest.raises(ValueError):
        github.add_token("ghs_x", "app", "not-a-bot")


def test_commits_and_pushes_of_a_pull_request(github: LocalGitHub) -> None:
    pr = github.open_pull(head_sha=SHA, author="dana", title="t", head_ref="promote")
    github.set_head(pr, "e" * 40, "maria", author="dana")
    github.set_head(pr, "f" * 40, force=True)

    commits = call(github, "GET", f"/repos/{REPO}/pulls/{pr}/commits")[1]
    assert [(c["sha"], c["author"]["login"], c["committer"]["login"]) for c in commits] == [
        ("f" * 40, "dana", "dana")]
    status, pushes, _ = call(github, "GET", f"/repos/{REPO}/activity?ref=refs/heads/promote")
    assert status == 200
    assert [(a["activity_type"], a["before"], a["after"], a["actor"]["login"])
            for a in pushes] == [("force_push", "e" * 40, "f" * 40, "dana"),
                                 ("push", SHA, "e" * 40, "maria"),
                                 ("branch_creation", "0" * 40, SHA, "dana")]
    assert call(github, "GET", f"/repos/{REPO}/activity?ref=refs/heads/other")[1] == []


def test_a_pull_requests_commits_are_listed_up_to_250_as_on_github(github: LocalGitHub
                                                                    ) -> None:
    pr = github.open_pull(head_sha=f"{1:040x}", author="dana", title="t")
    for i in range(2, 252):
        github.set_head(pr, f"{i:040x}")
    shas = [c["sha"] for page in (1, 2, 3) for c in call(
        github, "GET", f"/repos/{REPO}/pulls/{pr}/commits?per_page=100&page={page}")[1]]
    assert shas == [f"{i:040x}" for i in range(1, 251)]  # not the head, the 251st


def test_pull_request_shape(github: LocalGitHub) -> None:
    pr = github.open_pull(head_sha=SHA, author="dana", title="Promote", body="why")
    github.set_head(pr, "e" * 40)

    status, pull, _ = call(github, "GET", f"/repos/{REPO}/pulls/{pr}")

    assert status == 200
    assert (pull["number"], pull["title"], pull["body"], pull["state"]) == (
        pr, "Promote", "why", "open")
    assert pull["user"]["login"] == "dana"
    assert pull["head"]["sha"] == "e" * 40 and pull["head"]["repo"]["full_name"] == REPO
    assert pull["url"] == f"{github.url}/repos/{REPO}/pulls/{pr}"
    assert pull["merged_at"] is None and pull["merge_commit_sha"] is None


def test_comments_create_list_edit(github: LocalGitHub) -> None:
    pr = github.open_pull(number=12, head_sha=SHA, author="dana", title="t")

    status, created, headers = call(github, "POST", f"/repos/{REPO}/issues/12/comments",
                                    {"body": "hello"})
    assert status == 201
    assert created["user"] == {**created["user"], "login": "promotion-bot[bot]", "type": "Bot"}
    assert headers["Location"] == created["url"]
    assert created["url"] == f"{github.url}/repos/{REPO}/issues/comments/{created['id']}"

    status, edited, _ = call(github, "PATCH", f"/repos/{REPO}/issues/comments/{created['id']}",
                             {"body": "edited"})
    assert (status, edited["body"]) == (200, "edited")
    assert call(github, "GET", f"/repos/{REPO}/issues/comments/{created['id']}")[1][
        "body"] == "edited"
    assert [c["body"] for c in call(github, "GET", f"/repos/{REPO}/issues/{pr}/comments")[1]
            ] == ["edited"]
    assert github.comments(pr) == call(github, "GET", f"/repos/{REPO}/issues/{pr}/comments")[1]


def test_comment_needs_a_body(github: LocalGitHub) -> None:
    github.open_pull(head_sha=SHA, author="dana", title="t")
    status, body, _ = call(github, "POST", f"/repos/{REPO}/issues/1/comments", {"text": "x"})
    assert (status, body["message"]) == (422, "Validation Failed")
    assert call(github, "POST", f"/repos/{REPO}/issues/9/comments", {"body": "x"})[0] == 404


def test_lists_are_paginated_with_link_headers(github: LocalGitHub) -> None:
    pr = github.open_pull(head_sha=SHA, author="dana", title="t")
    for i in range(45):
        github.add_comment(pr, f"c{i}")

    status, first, headers = call(github, "GET", f"/repos/{REPO}/issues/{pr}/comments")
    assert (status, len(first)) == (200, 30)
    assert 'page=2>; rel="next"' in headers["Link"] and 'rel="last"' in headers["Link"]

    status, second, headers = call(github, "GET",
                                   f"/repos/{REPO}/issues/{pr}/comments?per_page=30&page=2")
    assert [c["body"] for c in first + second] == [f"c{i}" for i in range(45)]
    assert 'rel="next"' not in headers["Link"] and 'rel="prev"' in headers["Link"]

    assert "Link" not in call(github, "GET",
                              f"/repos/{REPO}/issues/{pr}/comments?per_page=100")[2]


def test_statuses_and_combined_status(github: LocalGitHub) -> None:
    for context, state in [("promotion-bot/plan", "pending"), ("ci", "success"),
                           ("promotion-bot/plan", "success")]:
        status, _, _ = call(github, "POST", f"/repos/{REPO}/statuses/{SHA}",
                            {"state": state, "context": context, "description": "d"})
        assert status == 201

    listed = call(github, "GET", f"/repos/{REPO}/commits/{SHA}/statuses")[1]
    assert [(s["context"], s["state"]) for s in listed] == [
        ("promotion-bot/plan", "success"), ("ci", "success"), ("promotion-bot/plan", "pending")]
    assert [s["state"] for s in github.statuses(SHA)] == ["pending", "success", "success"]

    combined = call(github, "GET", f"/repos/{REPO}/commits/{SHA}/status")[1]
    assert (combined["state"], combined["total_count"]) == ("success", 2)
    call(github, "POST", f"/repos/{REPO}/statuses/{SHA}", {"state": "failure", "context": "ci"})
    assert call(github, "GET", f"/repos/{REPO}/commits/{SHA}/status")[1]["state"] == "failure"


def test_status_is_validated_like_github(github: LocalGitHub) -> None:
    url = f"/repos/{REPO}/statuses/{SHA}"
    assert call(github, "POST", url, {"state": "green"})[0] == 422
    status, body, _ = call(github, "POST", url, {"state": "success", "description": "x" * 141})
    assert status == 422 and "140" in body["errors"][0]["message"]
    assert call(github, "POST", f"/repos/{REPO}/statuses/not-a-sha", {"state": "success"}
                )[0] == 422
    status, body, _ = call(github, "POST", f"/repos/{REPO}/statuses/{'c' * 40}",
                           {"state": "success"})  # well formed, but no such commit
    assert (status, body["message"]) == (422, f"No commit found for SHA: {'c' * 40}")
    assert github.statuses(SHA) == []


def test_reviews_in_order_and_dismissal_in_place(github: LocalGitHub) -> None:
    pr = github.open_pull(head_sha=SHA, author="dana", title="t")
    approval = github.review(pr, "erin", "APPROVED")
    github.review(pr, "frank", "COMMENTED", body="looks fine")
    assert github.review(pr, "erin", "DISMISSED") == approval

    reviews = call(github, "GET", f"/repos/{REPO}/pulls/{pr}/reviews")[1]
    assert [(r["user"]["login"], r["state"]) for r in reviews] == [
        ("erin", "DISMISSED"), ("frank", "COMMENTED")]
    assert reviews[0]["commit_id"] == SHA
    with pytest.raises(ValueError):
        github.review(pr, "erin", "LGTM")
    with pytest.raises(ValueError):
        github.review(pr, "gus", "DISMISSED")


def test_pulls_of_a_commit(github: LocalGitHub) -> None:
    first = github.open_pull(head_sha=SHA, author="dana", title="one")
    second = github.open_pull(head_sha="e" * 40, author="eve", title="two")
    github.merge_pull(first, "f" * 40)

    def numbers(sha: str) -> list[int]:
        return [p["number"] for p in call(github, "GET", f"/repos/{REPO}/commits/{sha}/pulls")[1]]

    assert numbers("f" * 40) == [first]
    assert numbers(SHA) == [first]
    assert numbers("e" * 40) == [second]
    assert call(github, "GET", f"/repos/{REPO}/commits/{'0' * 40}/pulls")[:2] == (
        422, {"message": f"No commit found for SHA: {'0' * 40}",
              "documentation_url": "https://docs.github.com/rest", "status": "422"})
    merged = call(github, "GET", f"/repos/{REPO}/pulls/{first}")[1]
    assert merged["merged"] and merged["state"] == "closed" and merged["merged_at"]


def test_helpers_reject_what_github_would_not_have(github: LocalGitHub) -> None:
    pr = github.open_pull(number=3, head_sha=SHA, author="dana", title="t")
    with pytest.raises(ValueError):
        github.open_pull(number=3, head_sha=SHA, author="dana", title="again")
    with pytest.raises(ValueError):
        github.set_head(pr, "main")
    github.merge_pull(pr, "f" * 40)
    with pytest.raises(ValueError):
        github.merge_pull(pr, "f" * 40)


def test_concurrent_writers_each_get_their_own_comment(github: LocalGitHub) -> None:
    pr = github.open_pull(head_sha=SHA, author="dana", title="t")
    ids: list[int] = []

    def post(i: int) -> None:
        ids.append(call(github, "POST", f"/repos/{REPO}/issues/{pr}/comments",
                        {"body": f"n{i}"})[1]["id"])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 20
    assert sorted(c["body"] for c in github.comments(pr)) == sorted(f"n{i}" for i in range(20))


def test_url_only_while_running() -> None:
    server = LocalGitHub()
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        url = server.url
        assert url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/user", timeout=2)


def test_collaborator_permission_as_github_reports_it(github: LocalGitHub) -> None:
    github.add_collaborator("maria", "maintain")
    status, body, _ = call(github, "GET", f"/repos/{REPO}/collaborators/maria/permission")
    assert status == 200
    assert (body["permission"], body["role_name"]) == ("write", "maintain")
    assert body["user"]["login"] == "maria" and body["user"]["permissions"] == {
        "admin": False, "maintain": True, "push": True, "triage": True, "pull": True}
    _, outsider, _ = call(github, "GET", f"/repos/{REPO}/collaborators/eve/permission")
    assert (outsider["permission"], outsider["role_name"]) == ("none", "none")
    with pytest.raises(ValueError, match="role must be one of"):
        github.add_collaborator("x", "owner")


def test_team_membership_and_bot_users(github: LocalGitHub) -> None:
    github.add_team_member("acme/model-risk", "Maria")
    status, body, _ = call(github, "GET", "/orgs/acme/teams/model-risk/memberships/maria")
    assert status == 200 and (body["state"], body["role"]) == ("active", "member")
    assert call(github, "GET", "/orgs/acme/teams/model-risk/memberships/dana")[0] == 404
    pr = github.open_pull(head_sha=SHA, author="dana", title="t")
    github.review(pr, "github-actions[bot]", "APPROVED")
    _, [review], _ = call(github, "GET", f"/repos/{REPO}/pulls/{pr}/reviews")
    assert review["user"]["type"] == "Bot" and review["commit_id"] == SHA
