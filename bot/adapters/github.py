"""The code host: the few verbs the bot needs from GitHub, behind one small class.

Everything above this module is independent of GitHub; everything here is a thin adapter
over PyGithub.

Every verb is safe to run again (the comment is found by its marker and edited, a status is
replaced by the next one of its context), so a verb that fails on a rate limit, a server
error or a dropped connection is run again whole, reads and writes alike. Rate limits are
waited out as GitHub asks (``Retry-After``, else ``X-RateLimit-Reset``, else a minute,
doubling), within one total wait per command (``PROMOTION_BOT_GITHUB_MAX_WAIT_SECONDS``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from github import Auth, Github, GithubException
from requests import RequestException

from bot.adapters.github_answers import (
    fit_comment,
    is_loopback,
    login_of,
    next_link,
    rate_limit,
    said,
    seconds_after,
    secs,
)
from bot.core.approvals import PullCommit, PullReviews, Push, Review, is_bot
from bot.errors import BotError
from bot.settings import settings

if TYPE_CHECKING:
    from github.Repository import Repository

    from bot.core.approvals import PullReviews, Push

T = TypeVar("T")

DEFAULT_API_URL = "https://api.github.com"
STATES = ("error", "failure", "pending", "success")
# GitHub refuses longer values with 422 instead of truncating them.
MAX_DESCRIPTION = 140
#: Repository activities that move a branch's head to a commit someone pushed.
_PUSHES = ("push", "force_push", "branch_creation")


def comment_marker(marker: str) -> str:
    """The hidden HTML comment that identifies the bot's comment for ``marker``."""
    return f"<!-- promotion-bot:{marker} -->"


class RateLimited(BotError):
    """GitHub's rate limit would keep the bot waiting longer than it may wait."""


class GitHubHost:
    """One repository on GitHub (or GitHub Enterprise, or the local server) through PyGithub.

    ``max_wait`` caps the seconds all rate limits together may keep this host waiting;
    ``secondary_wait`` is the first wait on a secondary limit that names none; ``attempts``
    and ``backoff`` bound the retries of server errors and lost connections. Each defaults to
    its ``PROMOTION_BOT_GITHUB_*`` setting.
    """

    def __init__(self, token: str, repository: str, base_url: str | None = None, *,
                 max_wait: float | None = None, secondary_wait: float | None = None,
                 attempts: int | None = None, backoff: float | None = None) -> None:
        if not token:
            raise BotError("GitHub: no token given (set GITHUB_TOKEN)")
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise BotError(f"GitHub: repository {repository!r} is not OWNER/NAME")
        s = settings()
        self.repository = repository
        self.base_url = (base_url or DEFAULT_API_URL).rstrip("/")
        self.max_wait = s.github_max_wait_seconds if max_wait is None else max_wait
        self.secondary_wait = (s.github_secondary_wait_seconds if secondary_wait is None
                               else secondary_wait)
        self.attempts = s.github_attempts if attempts is None else attempts
        self.backoff = s.github_backoff_seconds if backoff is None else backoff
        self.timeout = s.github_timeout_seconds
        self.waited = 0.0  # seconds spent waiting for GitHub so far
        self._token = token
        self._client: Github | None = None
        self._login: str | None = None  # who the token acts as, once known

    def __repr__(self) -> str:
        return f"GitHubHost(repository={self.repository!r}, base_url={self.base_url!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHubHost | None:
        """The host of the running workflow, or None when not on GitHub (no token or repository)."""
        env = os.environ if env is None else env
        token = env.get("GITHUB_TOKEN", "")
        repository = env.get("GITHUB_REPOSITORY", "")
        if not token or not repository:
            return None
        return cls(token, repository, env.get("GITHUB_API_URL") or None)

    # -- verbs ---------------------------------------------------------------------------

    def upsert_comment(self, pr: int, marker: str, body: str) -> int:
        """Edit the bot's comment carrying ``marker`` on ``pr``, or create it; return its id.

        Only one comment per marker ever exists: the oldest match is the one edited, so a
        PR shows the latest plan in one place instead of a comment per push.
        """
        if not marker or "--" in marker or any(c.isspace() for c in marker):
            raise ValueError(f"comment marker {marker!r} must be one word without '--'")
        tag = comment_marker(marker)
        text = fit_comment(f"{tag}\n{body}")

        def run() -> int:
            issue = self._repo().get_issue(pr)
            for comment in issue.get_comments():
                if tag in (comment.body or "") and self._is_ours(comment.user):
                    if comment.body != text:
                        comment.edit(text)
                    return int(comment.id)
            return int(issue.create_comment(text).id)

        return self._call(f"comment on pull request #{pr}", run)

    def set_status(self, sha: str, context: str, state: str, description: str,
                   target_url: str | None = None) -> None:
        """Set the commit status ``context`` of ``sha`` (what branch protection can require)."""
        if state not in STATES:
            raise ValueError(f"commit status state must be one of {STATES}, not {state!r}")
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 1] + "…"

        def run() -> None:
            commit = self._repo().get_commit(sha)
            if target_url:
                commit.create_status(state, target_url=target_url, description=description,
                                     context=context)
            else:
                commit.create_status(state, description=description, context=context)

        self._call(f"status {context} of commit {sha[:12]}", run)

    def pull_reviews(self, pr: int) -> PullReviews:
        """``pr``'s author, head, reviews (oldest first, with the commit each was given on),
        each human reviewer's permission on the repository, its commits with their authors'
        and committers' logins, and the push that made its head the head: what
        ``bot.core.approvals`` judges."""
        def run() -> PullReviews:
            pull = self._repo().get_pull(pr)
            reviews = tuple(
                Review(str(r.user.login), is_bot(str(r.user.login), r.user.type), str(r.state),
                       r.commit_id)
                for r in pull.get_reviews() if r.user is not None)
            author = str(pull.user.login)
            people = sorted({r.login for r in reviews
                             if not r.bot and r.login.lower() != author.lower()})
            # The commits' GitHub users (``author``/``committer``: the accounts their e-mails
            # belong to, null when none), https://docs.github.com/en/rest/pulls/pulls#list-commits-on-a-pull-request
            commits = tuple(
                PullCommit(str(c.sha), login_of(c.author), login_of(c.committer))
                for c in pull.get_commits())
            head_repo = pull.head.repo.full_name if pull.head.repo is not None else None
            return PullReviews(
                number=pr, author=author, head_sha=str(pull.head.sha), reviews=reviews,
                permissions={login: self._permission(login) for login in people},
                merge_sha=pull.merge_commit_sha, commits=commits,
                last_push=self._last_push(head_repo, str(pull.head.ref), str(pull.head.sha)))

        return self._call(f"reviews of pull request #{pr}", run)

    def is_team_member(self, team: str, login: str) -> bool:
        """Whether ``login`` is an active member of ``team`` (``org/slug``), as CODEOWNERS'
        ``@org/slug`` owners are checked. Reading memberships needs the token to have the
        organization's members:read."""
        org, _, slug = team.partition("/")

        def run() -> bool:
            try:
                membership = self._github().get_organization(org).get_team_by_slug(
                    slug).get_team_membership(login)
            except GithubException as error:
                if error.status == 404:
                    return False
                if error.status == 403 and rate_limit(error) is None:
                    # The Actions GITHUB_TOKEN can never read an organization's teams; an
                    # app token needs the organization permission members: read.
                    raise BotError(self._scrub(
                        f"GitHub refused to say whether {login} is in @{team} (403"
                        f"{said(error)}): code-owner teams are checked with a token that "
                        "may read the organization's members (the promotion-bot app's, with "
                        "members: read; the Actions GITHUB_TOKEN cannot)")) from None
                raise
            return str(membership.state) == "active"

        return self._call(f"membership of {login} in team @{team}", run)

    def pull_head(self, pr: int) -> str:
        """The head commit of ``pr`` now; of a merged pull request, the head that was merged
        (``head.sha`` of https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request)."""

        def run() -> str:
            return str(self._repo().get_pull(pr).head.sha)

        return self._call(f"head of pull request #{pr}", run)

    def pull_for_commit(self, sha: str) -> int | None:
        """The merged pull request that brought ``sha`` in, or None (e.g. a direct push)."""

        def run() -> int | None:
            merged = [p for p in self._repo().get_commit(sha).get_pulls()
                      if p.merged_at is not None]
            for pull in merged:
                if pull.merge_commit_sha == sha:
                    return int(pull.number)
            return int(merged[0].number) if merged else None

        return self._call(f"pull requests of commit {sha[:12]}", run)

    def pull_of_branch(self, branch: str) -> tuple[int, str] | None:
        """The newest pull request (number, web URL), open or closed, of this repository's
        ``branch``; None if none (https://docs.github.com/en/rest/pulls/pulls#list-pull-requests)."""
        return self._call(f"pull requests of branch {branch}", lambda: self._find_pull(branch))

    def open_pull(self, branch: str, base: str, title: str, body: str) -> tuple[int, str]:
        """Open a pull request of ``branch`` (pushed) into ``base``, or find the one there is
        (a rerun after a lost answer opens no second one); its number and web URL
        (https://docs.github.com/en/rest/pulls/pulls#create-a-pull-request)."""

        def run() -> tuple[int, str]:
            pull = self._find_pull(branch) or self._repo().create_pull(
                base=base, head=branch, title=title, body=fit_comment(body))
            return pull if isinstance(pull, tuple) else (int(pull.number), str(pull.html_url))

        return self._call(f"open a pull request of {branch}", run)

    # -- plumbing ------------------------------------------------------------------------

    def _find_pull(self, branch: str) -> tuple[int, str] | None:
        head = f"{self.repository.split('/')[0]}:{branch}"
        pull = next(iter(self._repo().get_pulls(state="all", head=head)), None)
        return None if pull is None else (int(pull.number), str(pull.html_url))

    def _github(self) -> Github:
        if self._client is None:
            # No retries below this class: ``_call`` retries whole verbs, which is safe for
            # writes too, and waits for rate limits within the total cap.
            throttle: dict[str, Any] = {}
            if is_loopback(self.base_url):
                # A loopback server is a local stand-in: no pacing of requests needed.
                throttle = {"seconds_between_requests": None, "seconds_between_writes": None}
            self._client = Github(auth=Auth.Token(self._token), base_url=self.base_url,
                                  lazy=True, retry=None, timeout=int(self.timeout), **throttle)
        return self._client

    def _repo(self) -> Repository:
        return self._github().get_repo(self.repository)

    def _permission(self, login: str) -> str:
        """``login``'s permission on the repository: admin, write, read or none (maintain
        counts as write, triage as read, as GitHub reports them)."""
        try:
            return str(self._repo().get_collaborator_permission(login))
        except GithubException as error:
            if error.status == 404:  # no such user
                return "none"
            raise

    def _last_push(self, repository: str | None, branch: str, head: str) -> Push | None:
        """The newest push (or force push, or branch creation) of ``branch`` that made
        ``head`` its head, from the repository's activity, which names who pushed
        (https://docs.github.com/en/rest/repos/repos#list-repository-activities); None when
        the activity shows none (a fork GitHub does not let this token read, a push older
        than the activity GitHub keeps)."""
        if repository is None:
            return None
        url: str | None = f"/repos/{repository}/activity"
        params: dict[str, Any] | None = {"ref": f"refs/heads/{branch}", "per_page": 100}
        requester = self._github().requester
        for _ in range(10):  # newest first: the push of the head is near the top
            if url is None:
                break
            try:
                headers, data = requester.requestJsonAndCheck("GET", url, parameters=params)
            except GithubException as error:
                if error.status in (403, 404) and rate_limit(error) is None:
                    return None
                raise
            for activity in data if isinstance(data, list) else []:
                if (str(activity.get("after") or "").lower() == head.lower()
                        and activity.get("activity_type") in _PUSHES):
                    actor = activity.get("actor") or {}
                    return Push(actor.get("login"), activity.get("before"))
            url, params = next_link(headers.get("link")), None
        return None

    def _is_ours(self, user: Any) -> bool:
        """Whether a comment's author is this bot's own identity, so that neither a human
        quoting the marker nor another bot or workflow (say a pull request's workflow
        commenting as github-actions[bot]) is taken for it."""
        if user is None:
            return False
        if self._login is None:
            self._login = self._own_login()
        return bool(str(user.login).lower() == self._login.lower())

    def _own_login(self) -> str:
        """Who this bot acts as: ``<slug>[bot]`` of the GitHub App in the settings, else the
        token's own login as GitHub's GraphQL ``viewer`` names it (it answers installation
        tokens too, which ``GET /user`` refuses with 403:
        https://docs.github.com/en/rest/users/users#get-the-authenticated-user)."""
        slug = settings().app_slug
        if slug:
            return f"{slug}[bot]"
        _, data = self._github().requester.graphql_query("query { viewer { login } }", {})
        login = ((data.get("data") or {}).get("viewer") or {}).get("login")
        if not login:
            raise BotError("GitHub did not say whose token this is (GraphQL viewer); set "
                           "PROMOTION_BOT_APP_SLUG to the GitHub App's slug")
        return str(login)

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """Run one PyGithub conversation, again after a rate limit, a server error or a lost
        connection; its failures as one-line ``BotError``s."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return action()
            except GithubException as error:
                limit = rate_limit(error)
                if limit is not None:
                    wait = self._rate_limit_wait(error, limit, attempt)
                    self._wait_or_give_up(what, wait, limit, error)
                    continue
                if int(error.status) < 500 or attempt >= self.attempts:
                    raise BotError(self._scrub(self._explain(what, error, attempt))) from None
            except RequestException as error:
                if attempt >= self.attempts:
                    reason = type(error).__name__
                    raise BotError(self._scrub(
                        f"GitHub: cannot reach {self.base_url} for {what} ({reason}, "
                        f"{attempt} tries)")) from None
            self._pause(float(self.backoff * 2 ** (attempt - 1)))

    def _rate_limit_wait(self, error: Any, limit: str, attempt: int) -> float:
        """How long GitHub asks to wait: ``Retry-After``, else until ``X-RateLimit-Reset`` when
        nothing remains, else (secondary) a minute, doubling with every further refusal."""
        headers = {k.lower(): v for k, v in (error.headers or {}).items()}
        retry_after = seconds_after(headers.get("retry-after"))
        if retry_after is not None:
            return retry_after
        reset = headers.get("x-ratelimit-reset")
        if headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
            # The reset is a whole second: wait until it has passed, in whole seconds.
            return float(math.ceil(max(0.0, int(reset) - time.time()))) + 1.0
        if limit == "primary":
            return 3600.0  # no reset time given: GitHub's hour
        return float(self.secondary_wait * 2 ** (attempt - 1))

    def _wait_or_give_up(self, what: str, wait: float, limit: str, error: Any) -> None:
        left = self.max_wait - self.waited
        if wait > left:
            until = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
            raise RateLimited(self._scrub(
                f"GitHub {limit} rate limit on {what} in {self.repository}: it asks to wait "
                f"{secs(wait)} s (until {until}), more than the {secs(max(left, 0))} s left of "
                f"this run's {secs(self.max_wait)} s wait cap "
                "(PROMOTION_BOT_GITHUB_MAX_WAIT_SECONDS); try again later"))
        self._pause(wait)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.waited += seconds
            time.sleep(seconds)

    def _explain(self, what: str, error: Any, attempts: int = 1) -> str:
        status = int(error.status)
        reason = said(error)
        if status == 401:
            return (f"GitHub rejected the token ({status}{reason}) for {what} in "
                    f"{self.repository}; check GITHUB_TOKEN")
        if status == 403:
            return (f"GitHub refused {what} in {self.repository} ({status}{reason}); "
                    "the token may lack a permission (pull-requests: write, statuses: write, "
                    "members: read)")
        if status == 404:
            return (f"GitHub: {what} not found in {self.repository} ({status}{reason}); "
                    "check the repository, the number and the token's access")
        if status >= 500:
            tries = f", {attempts} tries" if attempts > 1 else ""
            return (f"GitHub failed on {what} in {self.repository} ({status}{reason}{tries}); "
                    "try again")
        return f"GitHub refused {what} in {self.repository} ({status}{reason})"

    def _scrub(self, message: str) -> str:
        return message.replace(self._token, "***")
