"""A small local GitHub: the REST endpoints the bot uses, served on loopback.

PyGithub runs unmodified against it (``base_url=server.url``), so tests and the demo
exercise the same adapter code as a real workflow. State is changed through Python
helpers (open a pull request, push to it, review it, merge it, give someone a role on the
repository or a team) and read back the same way. Reviews record the head they were given
on (``commit_id``), collaborator permissions and team memberships answer as GitHub's do.

It is as strict as GitHub where the bot relies on it:

- tokens have a kind (``Token``): a user's token, the Actions ``GITHUB_TOKEN`` of a job with
  its ``permissions:``, or a GitHub App's installation token with the app's permissions.
  ``GET /user`` refuses both integration tokens with 403 "Resource not accessible by
  integration" (https://docs.github.com/en/rest/users/users#get-the-authenticated-user
  needs a user); the GraphQL ``viewer`` answers every kind with its login. Team membership
  (https://docs.github.com/en/rest/teams/members#get-team-membership-for-a-user) needs the
  organization's members read permission, which an Actions token never has (403); writing
  a status needs ``statuses: write``, a comment ``pull-requests`` or ``issues: write``,
  reading pull requests ``pull-requests: read``;
- only commits it was told of exist (those pushed to a pull request, a merge commit, or
  ``add_commit``): an unknown SHA gets 422 "No commit found for SHA" where GitHub answers so
  (creating a status, a commit, its pull requests);
- comments and statuses are created by the token's own user;
- a pull request opened through the API (``POST /pulls``) takes its head from the branch of
  that name in ``remote``, the git repository pushes go to (422 when there is no such
  branch, or an open pull request of it exists already), as GitHub does
  (https://docs.github.com/en/rest/pulls/pulls#create-a-pull-request: "Pull requests"
  write); ``GET /pulls`` filters by ``state``, ``head`` (``owner:branch``) and ``base``
  (https://docs.github.com/en/rest/pulls/pulls#list-pull-requests: "Pull requests" read).

A fault plan
(``bot.local.faults``, operations written ``METHOD /path``) makes it answer as GitHub does
when it is in trouble: rate limits with their headers, server errors, slow or lost answers.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import subprocess
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from bot.local.faults import GITHUB_KINDS, FaultPlan, Injector, github_error

Json = dict[str, Any]

REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED")
STATUS_STATES = ("error", "failure", "pending", "success")
_DOCS = "https://docs.github.com/rest"
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
#: Repository roles: the ``permission`` GitHub reports for each, and what it may do.
_PERMISSIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("admin", ("admin", "maintain", "push", "triage", "pull")),
    "maintain": ("write", ("maintain", "push", "triage", "pull")),
    "write": ("write", ("push", "triage", "pull")),
    "triage": ("read", ("triage", "pull")),
    "read": ("read", ("pull",)),
}


#: The kinds of token: a person's (or machine user's) token, the Actions GITHUB_TOKEN, a
#: GitHub App's installation token.
KINDS = ("user", "actions", "app")
#: What the promotion-bot GitHub App is granted (docs/github-setup.md).
APP_PERMISSIONS = {"contents": "read", "metadata": "read", "pull_requests": "write",
                   "statuses": "write", "members": "read"}
_LEVELS = {"none": 0, "read": 1, "write": 2}
_INTEGRATION = "Resource not accessible by integration"


@dataclass(frozen=True)
class Token:
    """Who a token acts as, and for an integration token what it may do."""

    kind: str  # one of KINDS
    login: str  # the user; github-actions[bot]; <app slug>[bot]
    permissions: dict[str, str] = field(default_factory=dict)  # integration tokens only

    def may(self, permission: str, level: str) -> bool:
        if self.kind == "user":
            return True  # a user's token: what the user may do (the roles are not modelled)
        return _LEVELS.get(self.permissions.get(permission, "none"), 0) >= _LEVELS[level]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An HTTP error answer, with GitHub's JSON error shape."""

    def __init__(self, status: int, message: str, errors: list[Json] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"message": message, "documentation_url": _DOCS, "status": str(status)}
        if errors:
            self.body["errors"] = errors


@dataclass
class _Pull:
    number: int
    id: int
    title: str
    body: str
    author: str
    head_ref: str
    commits: list[str]
    created_at: str
    updated_at: str
    base_sha: str = "0" * 40
    base_ref: str = "main"
    state: str = "open"
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    closed_at: str | None = None
    reviews: list[Json] = field(default_factory=list)

    @property
    def head_sha(self) -> str:
        return self.commits[-1]


class LocalGitHub:
    """One repository's pull requests, comments, reviews and commit statuses, over HTTP."""

    def __init__(self, token: str = "local-token", repository: str = "acme/fraud-models", *,
                 bot_login: str = "promotion-bot[bot]", host: str = "127.0.0.1", port: int = 0,
                 kind: str = "app", permissions: dict[str, str] | None = None,
                 faults: FaultPlan | None = None, remote: Path | str | None = None) -> None:
        """``token`` is of ``kind`` and acts as ``bot_login``: by default the installation
        token of the promotion-bot app (``APP_PERMISSIONS``); ``add_token`` adds others.
        ``faults`` makes it fail by that plan (see ``inject``). ``remote`` is the git
        repository branches are pushed to: ``POST /pulls`` reads a branch's head there."""
        if repository.count("/") != 1:
            raise ValueError(f"repository {repository!r} is not OWNER/NAME")
        self.token = token
        self.repository = repository
        self.remote = Path(remote) if remote is not None else None
        self.bot_login = bot_login
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._ids = itertools.count(1_000_001)
        self._tokens: dict[str, Token] = {}
        self._pulls: dict[int, _Pull] = {}
        self._commits: dict[str, Json] = {}  # sha -> {"author": login, "committer": login}
        self._activity: list[Json] = []  # pushes, oldest first
        self._comments: dict[int, Json] = {}
        self._statuses: dict[str, list[Json]] = {}
        self._roles: dict[str, str] = {}  # login (lower case) -> repository role
        self._teams: dict[str, set[str]] = {}  # "org/slug" (lower case) -> member logins
        self._failures: list[tuple[int, str | None]] = []
        self._faults: Injector | None = None
        self._log: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._acting: Token | None = None  # the caller of the request being answered
        self.add_token(token, kind, bot_login, permissions)
        self.inject(faults)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> LocalGitHub:
        if self._server is None:
            self._server = _Server((self._host, self._port), _Handler, self)
            # A short poll interval makes stop() quick (serve_forever checks it that often).
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                            name="local-github", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> LocalGitHub:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API base URL to give PyGithub (``base_url``) or the bot (``GITHUB_API_URL``)."""
        if self._server is None:
            raise RuntimeError("LocalGitHub is not started")
        return f"http://{self._host}:{self._server.server_port}"

    # -- state helpers (the "GitHub UI" of tests and the demo) ----------------------------

    def add_token(self, token: str, kind: str, login: str | None = None,
                  permissions: dict[str, str] | None = None) -> Token:
        """Accept ``token`` from now on: a ``user`` token acts as ``login``; an ``actions``
        token as github-actions[bot] with ``permissions`` (the job's, default contents and
        metadata read); an ``app`` installation token as ``login`` (``<slug>[bot]``) with
        ``permissions`` (default ``APP_PERMISSIONS``)."""
        if kind not in KINDS:
            raise ValueError(f"token kind must be one of {KINDS}, not {kind!r}")
        if kind == "actions":
            login = "github-actions[bot]"
            permissions = {"contents": "read", "metadata": "read", **(permissions or {})}
            permissions.pop("members", None)  # never granted to GITHUB_TOKEN
        elif kind == "app":
            permissions = dict(APP_PERMISSIONS if permissions is None else permissions)
        if not login:
            raise ValueError(f"a {kind} token needs a login")
        if kind == "app" and not login.endswith("[bot]"):
            raise ValueError(f"an app acts as <slug>[bot], not {login!r}")
        with self._lock:
            self._tokens[token] = Token(kind, login, dict(permissions or {}))
            return self._tokens[token]

    def add_commit(self, sha: str, author: str | None = None,
                   committer: str | None = None) -> None:
        """Make ``sha`` a commit of the repository, authored and committed by those logins
        (None: an e-mail no account claims); a known commit keeps what it had."""
        _check_sha(sha)
        with self._lock:
            self._commits.setdefault(sha.lower(), {"author": author,
                                                   "committer": committer or author})

    def open_pull(self, number: int | None = None, *, head_sha: str, author: str, title: str,
                  body: str = "", head_ref: str | None = None, base_sha: str | None = None
                  ) -> int:
        """Open a pull request whose head is ``head_sha``, pushed by ``author`` to a new
        branch (a commit of theirs, unless known already); return its number."""
        _check_sha(head_sha)
        with self._lock:
            if number is None:
                number = max(self._pulls, default=0) + 1
            if number in self._pulls:
                raise ValueError(f"pull request #{number} already exists")
            now = _now()
            self.add_commit(head_sha, author)
            self._pulls[number] = _Pull(
                number=number, id=next(self._ids), title=title, body=body, author=author,
                head_ref=head_ref or f"promote-{number}", commits=[head_sha], created_at=now,
                updated_at=now, base_sha=base_sha or "0" * 40)
            self._push(self._pulls[number], None, head_sha, author, "branch_creation")
            return number

    def set_head(self, pr: int, sha: str, pusher: str | None = None, *,
                 author: str | None = None, committer: str | None = None,
                 force: bool = False) -> None:
        """``pusher`` (default: the pull request's author) pushes ``sha`` onto the pull
        request's branch: it becomes the head. A new commit is authored by ``author`` and
        committed by ``committer`` (default: the pusher). ``force``: a force push that
        replaces the branch's commits."""
        _check_sha(sha)
        with self._lock:
            pull = self._pull(pr)
            pusher = pusher or pull.author
            self.add_commit(sha, author or pusher, committer or author or pusher)
            before = pull.head_sha
            pull.commits = [sha] if force else [*pull.commits, sha]
            pull.updated_at = _now()
            self._push(pull, before, sha, pusher, "force_push" if force else "push")

    def merge_pull(self, pr: int, merge_sha: str) -> None:
        """Merge the pull request; ``merge_sha`` is the commit it made on the base branch."""
        _check_sha(merge_sha)
        with self._lock:
            pull = self._pull(pr)
            if pull.merged_at:
                raise ValueError(f"pull request #{pr} is already merged")
            self.add_commit(merge_sha, None, "web-flow")
            pull.state, pull.merge_commit_sha = "closed", merge_sha
            pull.merged_at = pull.closed_at = pull.updated_at = _now()

    def review(self, pr: int, user: str, state: str, body: str = "") -> int:
        """Submit a review (APPROVED, CHANGES_REQUESTED, COMMENTED), or dismiss (DISMISSED)
        ``user``'s latest approving or blocking review in place, as GitHub does; return its id.
        """
        if state not in REVIEW_STATES:
            raise ValueError(f"review state must be one of {REVIEW_STATES}, not {state!r}")
        with self._lock:
            pull = self._pull(pr)
            if state == "DISMISSED":
                for review in reversed(pull.reviews):
                    if (review["user"]["login"] == user
                            and review["state"] in ("APPROVED", "CHANGES_REQUESTED")):
                        review["state"] = "DISMISSED"
                        return int(review["id"])
                raise ValueError(f"{user} has no review on #{pr} to dismiss")
            review_id = next(self._ids)
            pull.reviews.append({
                "id": review_id, "node_id": f"PRR_{review_id}", "user": self._user(user),
                "body": body, "state": state, "commit_id": pull.head_sha,
                "submitted_at": _now(), "author_association": "MEMBER",
                "html_url": f"{self._web(pr)}#pullrequestreview-{review_id}",
                "pull_request_url": f"{self._api()}/pulls/{pr}",
            })
            return review_id

    def add_collaborator(self, login: str, role: str = "write") -> None:
        """Give ``login`` a role on the repository (admin, maintain, write, triage, read)."""
        if role not in _PERMISSIONS:
            raise ValueError(f"role must be one of {sorted(_PERMISSIONS)}, not {role!r}")
        with self._lock:
            self._roles[login.lower()] = role

    def add_team_member(self, team: str, login: str) -> None:
        """Make ``login`` an active member of ``team`` (``org/slug``)."""
        if team.count("/") != 1:
            raise ValueError(f"team {team!r} is not ORG/SLUG")
        with self._lock:
            self._teams.setdefault(team.lower(), set()).add(login.lower())

    def add_comment(self, pr: int, body: str, user: str = "octocat") -> int:
        """A comment written by someone other than the bot (e.g. a reviewer); returns its id."""
        with self._lock:
            self._pull(pr)
            return self._new_comment(pr, body, user, "User")

    def pulls(self) -> list[Json]:
        """Every pull request as the API shows it, by number."""
        with self._lock:
            return [self._pull_json(p) for _, p in sorted(self._pulls.items())]

    def comments(self, pr: int) -> list[Json]:
        """The pull request's comments as the API shows them, oldest first."""
        with self._lock:
            return [self._comment_json(c) for c in self._comments.values() if c["issue"] == pr]

    def statuses(self, sha: str) -> list[Json]:
        """The commit statuses set on ``sha`` as the API shows them, in the order they were set."""
        with self._lock:
            return copy.deepcopy(self._statuses.get(sha.lower(), []))

    def fail_next(self, status: int = 502, count: int = 1, method: str | None = None) -> None:
        """Answer the next ``count`` API requests (of ``method``, if given) with ``status``."""
        with self._lock:
            self._failures.extend([(status, method)] * count)

    def inject(self, plan: FaultPlan | None) -> Injector | None:
        """Answer by ``plan`` from now on (None: no failures); the injector counts them."""
        with self._lock:
            self._faults = Injector(plan) if plan is not None and plan.rules else None
            return self._faults

    def injector(self) -> Injector | None:
        """The fault plan in use, which counts what it injected; None without one."""
        with self._lock:
            return self._faults

    def request_log(self) -> list[str]:
        """Every request received, as ``METHOD /path?query``, oldest first."""
        with self._lock:
            return list(self._log)

    # -- HTTP ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, authorization: str | None,
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        """Answer one request: (status, JSON body or None, extra headers)."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        injector = self._faults
        rule = None if injector is None else injector.pick("github", f"{method} {path}",
                                                           GITHUB_KINDS)
        if injector is not None and rule is not None:
            injector.delay(rule)  # outside the lock: a slow answer holds up no other
        with self._lock:
            self._log.append(f"{method} {target}")
            try:
                caller = self._caller(authorization)
                if caller is None:
                    raise ApiError(401, "Bad credentials")
                if rule is not None and rule.kind != "slow" and not rule.after:
                    return github_error(rule)
                for i, (status, only) in enumerate(self._failures):
                    if only in (None, method):
                        del self._failures[i]
                        raise ApiError(status, "Server Error" if status >= 500 else "Error")
                payload = _parse(body) if method in ("POST", "PATCH") else {}
                answer = self._route(caller, method, path, query, payload)
            except ApiError as error:
                answer = error.status, error.body, {}
            # A lost answer: the request took effect, the client hears the failure.
            return github_error(rule) if rule is not None and rule.after else answer

    def _caller(self, authorization: str | None) -> Token | None:
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self._tokens.get(value.strip())

    def _route(self, caller: Token, method: str, path: str, query: dict[str, str],
               payload: Json) -> tuple[int, Any, dict[str, str]]:
        if path == "/user" and method == "GET":
            if caller.kind != "user":
                raise ApiError(403, _INTEGRATION)
            return 200, self._user(caller.login, "User"), {}
        if path == "/graphql" and method == "POST":
            return self._graphql(caller, payload)
        team = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", path)
        if team and method == "GET":
            self._need(caller, "members", "read")
            return self._team_membership(*team.groups())
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not match or f"{match[1]}/{match[2]}".lower() != self.repository.lower():
            raise ApiError(404, "Not Found")
        rest = match[3] or ""
        for verb, pattern, needs, action in self._routes():
            found = re.fullmatch(pattern, rest)
            if found and verb == method:
                for permission, level in needs:
                    self._need(caller, permission, level)
                self._acting = caller
                return action(query, payload, *found.groups())
        raise ApiError(404, "Not Found")

    def _need(self, caller: Token, permission: str, level: str) -> None:
        """403 as GitHub answers an integration token without ``permission`` at ``level``
        (issue comments: ``pull_requests`` or ``issues``)."""
        names = ("pull_requests", "issues") if permission == "pull_requests" else (permission,)
        if not any(caller.may(name, level) for name in names):
            raise ApiError(403, _INTEGRATION)

    def _routes(self) -> list[tuple[str, str, tuple[tuple[str, str], ...],
                                    Callable[..., tuple[int, Any, dict[str, str]]]]]:
        read, pulls = (("metadata", "read"),), (("pull_requests", "read"),)
        contents = (("contents", "read"),)
        return [
            ("GET", r"", read, lambda q, p: (200, self._repo_json(), {})),
            ("GET", r"/pulls", pulls, self._list_pulls),
            ("POST", r"/pulls", (("pull_requests", "write"),), self._create_pull),
            ("GET", r"/pulls/(\d+)", pulls,
             lambda q, p, n: (200, self._pull_json(self._pull(int(n))), {})),
            ("GET", r"/pulls/(\d+)/reviews", pulls, self._list_reviews),
            ("GET", r"/pulls/(\d+)/commits", pulls, self._list_pull_commits),
            ("GET", r"/issues/(\d+)", pulls,
             lambda q, p, n: (200, self._issue_json(self._pull(int(n))), {})),
            ("GET", r"/issues/(\d+)/comments", pulls, self._list_comments),
            ("POST", r"/issues/(\d+)/comments", (("pull_requests", "write"),),
             self._create_comment),
            ("GET", r"/issues/comments/(\d+)", pulls,
             lambda q, p, i: (200, self._comment_json(self._comment(int(i))), {})),
            ("PATCH", r"/issues/comments/(\d+)", (("pull_requests", "write"),),
             self._edit_comment),
            ("DELETE", r"/issues/comments/(\d+)", (("pull_requests", "write"),),
             self._delete_comment),
            ("POST", r"/statuses/([^/]+)", (("statuses", "write"),), self._create_status),
            ("GET", r"/commits/([^/]+)", contents,
             lambda q, p, s: (200, self._commit_json(s), {})),
            ("GET", r"/commits/([^/]+)/statuses", (("statuses", "read"),), self._list_statuses),
            ("GET", r"/commits/([^/]+)/status", (("statuses", "read"),), self._combined_status),
            ("GET", r"/commits/([^/]+)/pulls", contents + pulls, self._commit_pulls),
            ("GET", r"/collaborators/([^/]+)/permission", read, self._permission),
            ("GET", r"/activity", read, self._list_activity),
        ]

    # -- endpoints -----------------------------------------------------------------------

    def _list_reviews(self, query: dict[str, str], payload: Json, n: str
                      ) -> tuple[int, Any, dict[str, str]]:
        reviews = copy.deepcopy(self._pull(int(n)).reviews)
        return self._page(f"/pulls/{n}/reviews", query, reviews)

    def _list_pulls(self, query: dict[str, str], payload: Json
                    ) -> tuple[int, Any, dict[str, str]]:
        """Newest first, filtered by ``state`` (open, closed, all; default open), ``head``
        (``owner:branch``) and ``base``."""
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise ApiError(422, "Validation Failed", [
                {"resource": "PullRequest", "field": "state", "code": "invalid"}])
        owner = self.repository.split("/")[0]
        found = [self._pull_json(p) for n, p in sorted(self._pulls.items(), reverse=True)
                 if state in ("all", p.state)
                 and query.get("head") in (None, f"{owner}:{p.head_ref}")
                 and query.get("base") in (None, p.base_ref)]
        return self._page("/pulls", query, found)

    def _create_pull(self, query: dict[str, str], payload: Json
                     ) -> tuple[int, Any, dict[str, str]]:
        """A pull request of a branch pushed to ``remote`` into ``base``, by the caller."""
        title = _required_string(payload, "title", "PullRequest")
        base = _required_string(payload, "base", "PullRequest")
        head = _required_string(payload, "head", "PullRequest")
        owner = self.repository.split("/")[0]
        branch = head.split(":", 1)[1] if head.startswith(f"{owner}:") else head
        sha, base_sha = self._branch_head(branch), self._branch_head(base)
        if sha is None or base_sha is None:
            raise ApiError(422, "Validation Failed", [
                {"resource": "PullRequest", "field": "head" if sha is None else "base",
                 "code": "invalid"}])
        if any(p.head_ref == branch and p.state == "open" for p in self._pulls.values()):
            raise ApiError(422, "Validation Failed", [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {owner}:{branch}."}])
        login, _ = self._acting_user()
        number = self.open_pull(head_sha=sha, author=login, title=title,
                                body=str(payload.get("body") or ""), head_ref=branch,
                                base_sha=base_sha)
        pull = self._pulls[number]
        pull.base_ref = base
        answer = self._pull_json(pull)
        return 201, answer, {"Location": answer["url"]}

    def _branch_head(self, branch: str) -> str | None:
        """The commit ``branch`` points to in ``remote``; None without one."""
        if self.remote is None or not branch or branch.startswith("-"):
            return None
        done = subprocess.run(
            ["git", "-C", str(self.remote), "rev-parse", "--verify", "--quiet",
             f"refs/heads/{branch}^{{commit}}"], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def _list_pull_commits(self, query: dict[str, str], payload: Json, n: str
                           ) -> tuple[int, Any, dict[str, str]]:
        """Oldest first, each with the accounts of its author and committer, as GitHub lists
        them (https://docs.github.com/en/rest/pulls/pulls#list-commits-on-a-pull-request)."""
        # "Lists a maximum of 250 commits for a pull request": the oldest 250.
        commits = [self._commit_json(sha) for sha in self._pull(int(n)).commits[:250]]
        return self._page(f"/pulls/{n}/commits", query, commits)

    def _list_activity(self, query: dict[str, str], payload: Json
                       ) -> tuple[int, Any, dict[str, str]]:
        """Pushes, newest first, filtered by ``ref``, ``actor`` and ``activity_type`` as
        https://docs.github.com/en/rest/repos/repos#list-repository-activities does."""
        found = [a for a in reversed(self._activity)
                 if query.get("ref") in (None, a["ref"])
                 and query.get("activity_type") in (None, a["activity_type"])
                 and query.get("actor") in (None, (a["actor"] or {}).get("login"))]
        return self._page("/activity", query, copy.deepcopy(found))

    def _graphql(self, caller: Token, payload: Json) -> tuple[int, Any, dict[str, str]]:
        """Only ``query { viewer { login } }``: who the token acts as, for every kind of
        token (https://docs.github.com/en/graphql/reference/queries#viewer)."""
        query = " ".join(str(payload.get("query") or "").split())
        if re.fullmatch(r"(query\s*)?\{ ?viewer ?\{ ?login ?\} ?\}", query) is None:
            return 200, {"errors": [{"message": "the local GitHub answers only "
                                                "{ viewer { login } }"}]}, {}
        return 200, {"data": {"viewer": {"login": caller.login}}}, {}

    def _list_comments(self, query: dict[str, str], payload: Json, n: str
                       ) -> tuple[int, Any, dict[str, str]]:
        self._pull(int(n))
        return self._page(f"/issues/{n}/comments", query, self.comments(int(n)))

    def _create_comment(self, query: dict[str, str], payload: Json, n: str
                        ) -> tuple[int, Any, dict[str, str]]:
        self._pull(int(n))
        text = _required_string(payload, "body", "IssueComment")
        comment_id = self._new_comment(int(n), text, *self._acting_user())
        comment = self._comment_json(self._comments[comment_id])
        return 201, comment, {"Location": comment["url"]}

    def _edit_comment(self, query: dict[str, str], payload: Json, i: str
                      ) -> tuple[int, Any, dict[str, str]]:
        comment = self._comment(int(i))
        comment["body"] = _required_string(payload, "body", "IssueComment")
        comment["updated_at"] = _now()
        return 200, self._comment_json(comment), {}

    def _delete_comment(self, query: dict[str, str], payload: Json, i: str
                        ) -> tuple[int, Any, dict[str, str]]:
        self._comment(int(i))
        del self._comments[int(i)]
        return 204, None, {}

    def _create_status(self, query: dict[str, str], payload: Json, sha: str
                       ) -> tuple[int, Any, dict[str, str]]:
        sha = self._known_sha(sha)
        state = payload.get("state")
        if state not in STATUS_STATES:
            raise ApiError(422, "Validation Failed", [
                {"resource": "Status", "code": "custom", "field": "state",
                 "message": f"state is not included in the list {list(STATUS_STATES)}"}])
        description = payload.get("description")
        if isinstance(description, str) and len(description) > 140:
            raise ApiError(422, "Validation Failed", [
                {"resource": "Status", "code": "custom", "field": "description",
                 "message": "description is too long (maximum is 140 characters)"}])
        status_id, now = next(self._ids), _now()
        status = {
            "url": f"{self._api()}/statuses/{sha}", "id": status_id,
            "node_id": f"SC_{status_id}", "state": state, "description": description,
            "target_url": payload.get("target_url"),
            "context": payload.get("context") or "default", "created_at": now,
            "updated_at": now, "creator": self._user(*self._acting_user()),
            "avatar_url": None,
        }
        self._statuses.setdefault(sha, []).append(status)
        return 201, copy.deepcopy(status), {}

    def _list_statuses(self, query: dict[str, str], payload: Json, sha: str
                       ) -> tuple[int, Any, dict[str, str]]:
        sha = self._known_sha(sha)
        newest_first = list(reversed(self.statuses(sha)))
        return self._page(f"/commits/{sha}/statuses", query, newest_first)

    def _combined_status(self, query: dict[str, str], payload: Json, sha: str
                         ) -> tuple[int, Any, dict[str, str]]:
        sha = self._known_sha(sha)
        latest: dict[str, Json] = {}
        for status in self.statuses(sha):
            latest[status["context"]] = status
        states = {s["state"] for s in latest.values()}
        if states & {"error", "failure"}:
            state = "failure"
        elif not states or "pending" in states:
            state = "pending"
        else:
            state = "success"
        return 200, {
            "state": state, "statuses": list(latest.values()), "sha": sha,
            "total_count": len(latest), "repository": self._repo_json(),
            "commit_url": f"{self._api()}/commits/{sha}",
            "url": f"{self._api()}/commits/{sha}/status",
        }, {}

    def _commit_pulls(self, query: dict[str, str], payload: Json, sha: str
                      ) -> tuple[int, Any, dict[str, str]]:
        sha = self._known_sha(sha)
        pulls = [self._pull_json(p) for p in self._pulls.values()
                 if sha in (c.lower() for c in p.commits)
                 or (p.merge_commit_sha or "").lower() == sha]
        return self._page(f"/commits/{sha}/pulls", query, pulls)

    def _permission(self, query: dict[str, str], payload: Json, login: str
                    ) -> tuple[int, Any, dict[str, str]]:
        """As GitHub: ``permission`` is admin, write, read or none (maintain reads as write,
        triage as read); ``role_name`` is the role itself."""
        role = self._roles.get(unquote(login).lower(), "none")
        user = self._user(unquote(login))
        user["permissions"] = {name: name in _PERMISSIONS.get(role, ("none", ()))[1]
                               for name in ("admin", "maintain", "push", "triage", "pull")}
        user["role_name"] = role
        return 200, {"permission": _PERMISSIONS.get(role, ("none", ()))[0], "role_name": role,
                     "user": user}, {}

    def _team_membership(self, org: str, slug: str, login: str
                         ) -> tuple[int, Any, dict[str, str]]:
        team = f"{unquote(org)}/{unquote(slug)}".lower()
        if unquote(login).lower() not in self._teams.get(team, set()):
            raise ApiError(404, "Not Found")
        return 200, {"url": f"{self.url}/orgs/{org}/teams/{slug}/memberships/{login}",
                     "role": "member", "state": "active"}, {}

    # -- shapes --------------------------------------------------------------------------

    def _api(self) -> str:
        return f"{self.url}/repos/{self.repository}"

    def _web(self, pr: int) -> str:
        return f"{self.url}/{self.repository}/pull/{pr}"

    def _user(self, login: str, kind: str | None = None) -> Json:
        kind = kind or ("Bot" if login.endswith("[bot]") else "User")
        return {
            "login": login, "id": _stable_id(login), "node_id": f"U_{_stable_id(login)}",
            "avatar_url": f"{self.url}/avatars/{login}", "url": f"{self.url}/users/{login}",
            "html_url": f"{self.url}/{login}", "type": kind, "site_admin": False,
        }

    def _repo_json(self) -> Json:
        owner, name = self.repository.split("/")
        return {
            "id": _stable_id(self.repository), "node_id": f"R_{_stable_id(self.repository)}",
            "name": name, "full_name": self.repository,
            "owner": self._user(owner, "Organization"), "private": True,
            "html_url": f"{self.url}/{self.repository}", "url": self._api(),
            "fork": False, "default_branch": "main", "visibility": "private",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": _now(), "pushed_at": _now(),
        }

    def _pull_json(self, pull: _Pull) -> Json:
        api, n = self._api(), pull.number
        repo = self._repo_json()
        owner = self.repository.split("/")[0]
        return {
            "url": f"{api}/pulls/{n}", "id": pull.id, "node_id": f"PR_{pull.id}",
            "html_url": self._web(n), "diff_url": f"{self._web(n)}.diff",
            "patch_url": f"{self._web(n)}.patch", "issue_url": f"{api}/issues/{n}",
            "commits_url": f"{api}/pulls/{n}/commits",
            "review_comments_url": f"{api}/pulls/{n}/comments",
            "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": n, "state": pull.state, "locked": False, "title": pull.title,
            "body": pull.body, "user": self._user(pull.author), "labels": [],
            "created_at": pull.created_at, "updated_at": pull.updated_at,
            "closed_at": pull.closed_at, "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha, "draft": False,
            "merged": pull.merged_at is not None, "author_association": "MEMBER",
            "head": {"label": f"{owner}:{pull.head_ref}", "ref": pull.head_ref,
                     "sha": pull.head_sha, "user": repo["owner"], "repo": repo},
            "base": {"label": f"{owner}:{pull.base_ref}", "ref": pull.base_ref,
                     "sha": pull.base_sha,
                     "user": repo["owner"], "repo": repo},
            "comments": sum(1 for c in self._comments.values() if c["issue"] == n),
            "commits": len(pull.commits),
        }

    def _issue_json(self, pull: _Pull) -> Json:
        api, n = self._api(), pull.number
        return {
            "url": f"{api}/issues/{n}", "id": pull.id + 1, "node_id": f"I_{pull.id}",
            "number": n, "title": pull.title, "body": pull.body, "state": pull.state,
            "user": self._user(pull.author), "labels": [], "locked": False,
            "comments_url": f"{api}/issues/{n}/comments", "html_url": self._web(n),
            "comments": sum(1 for c in self._comments.values() if c["issue"] == n),
            "created_at": pull.created_at, "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "pull_request": {"url": f"{api}/pulls/{n}", "html_url": self._web(n),
                             "merged_at": pull.merged_at},
        }

    def _comment_json(self, comment: Json) -> Json:
        n, comment_id = comment["issue"], comment["id"]
        return {
            "id": comment_id, "node_id": f"IC_{comment_id}",
            "url": f"{self._api()}/issues/comments/{comment_id}",
            "html_url": f"{self._web(n)}#issuecomment-{comment_id}",
            "issue_url": f"{self._api()}/issues/{n}", "body": comment["body"],
            "user": self._user(comment["login"], comment["kind"]),
            "created_at": comment["created_at"], "updated_at": comment["updated_at"],
            "author_association": "NONE" if comment["kind"] == "Bot" else "MEMBER",
            "performed_via_github_app": None,
        }

    def _commit_json(self, sha: str) -> Json:
        sha = self._known_sha(sha)
        who = self._commits[sha]

        def person(login: str | None) -> Json:
            name = login or "someone"
            return {"name": name, "email": f"{name}@users.noreply.example", "date": _now()}

        return {
            "sha": sha, "node_id": f"C_{sha}", "url": f"{self._api()}/commits/{sha}",
            "html_url": f"{self.url}/{self.repository}/commit/{sha}",
            "comments_url": f"{self._api()}/commits/{sha}/comments",
            "commit": {"message": "", "url": f"{self._api()}/git/commits/{sha}",
                       "author": person(who["author"]), "committer": person(who["committer"]),
                       "tree": {"sha": sha, "url": f"{self._api()}/git/trees/{sha}"}},
            "author": self._user(who["author"]) if who["author"] else None,
            "committer": self._user(who["committer"]) if who["committer"] else None,
            "parents": [], "files": [],
        }

    # -- internals -----------------------------------------------------------------------

    def _pull(self, number: int) -> _Pull:
        try:
            return self._pulls[number]
        except KeyError:
            raise ApiError(404, "Not Found") from None

    def _comment(self, comment_id: int) -> Json:
        try:
            return self._comments[comment_id]
        except KeyError:
            raise ApiError(404, "Not Found") from None

    def _new_comment(self, pr: int, body: str, login: str, kind: str) -> int:
        comment_id, now = next(self._ids), _now()
        self._comments[comment_id] = {"id": comment_id, "issue": pr, "body": body,
                                      "login": login, "kind": kind, "created_at": now,
                                      "updated_at": now}
        return comment_id

    def _known_sha(self, sha: str) -> str:
        """``sha`` in lower case, or 422 as GitHub answers for a commit it does not have."""
        if not _SHA.match(sha) or sha.lower() not in self._commits:
            raise ApiError(422, f"No commit found for SHA: {sha}")
        return sha.lower()

    def _acting_user(self) -> tuple[str, str]:
        """The login and user type of the request's caller."""
        caller = self._acting
        if caller is None:
            return self.bot_login, "Bot"
        return caller.login, "User" if caller.kind == "user" else "Bot"

    def _push(self, pull: _Pull, before: str | None, after: str, pusher: str,
              kind: str) -> None:
        """Record a push of ``pull``'s branch in the repository's activity."""
        activity_id = next(self._ids)
        self._activity.append({
            "id": activity_id, "node_id": f"RA_{activity_id}", "before": before or "0" * 40,
            "after": after, "ref": f"refs/heads/{pull.head_ref}", "timestamp": _now(),
            "activity_type": kind, "actor": self._user(pusher)})

    def _page(self, path: str, query: dict[str, str], items: list[Json]
              ) -> tuple[int, Any, dict[str, str]]:
        """One page of a list, with the ``Link`` header GitHub sends when there are more."""
        try:
            per_page = min(max(int(query.get("per_page", 30)), 1), 100)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            raise ApiError(400, "Invalid pagination parameters") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        if last == 1:
            return 200, chunk, {}

        def link(number: int, rel: str) -> str:
            params = urlencode({**query, "per_page": per_page, "page": number})
            return f'<{self._api()}{path}?{params}>; rel="{rel}"'

        rels = []
        if page > 1:
            rels += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        return 200, chunk, {"Link": ", ".join(rels)}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections under a burst of clients.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 app: LocalGitHub) -> None:
        self.app = app
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "LocalGitHub/1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload, headers = self.server.app.handle(
                self.command, self.path, self.headers.get("Authorization"), body)
        except Exception as error:  # a bug here must not hang the client
            status, payload, headers = 500, {"message": f"local GitHub bug: {error}"}, {}
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the demo read the request log instead."""


def _parse(body: bytes) -> Json:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "Problems parsing JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "Problems parsing JSON")
    return payload


def _required_string(payload: Json, name: str, resource: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(422, "Validation Failed",
                       [{"resource": resource, "code": "missing_field", "field": name}])
    if len(value) > 65_536:
        raise ApiError(422, "Validation Failed",
                       [{"resource": resource, "code": "custom", "field": name,
                         "message": f"{name} is too long (maximum is 65536 characters)"}])
    return value


def _check_sha(sha: str) -> None:
    if not _SHA.match(sha):
        raise ValueError(f"{sha!r} is not a hexadecimal commit SHA")


def _stable_id(name: str) -> int:
    """A stable positive id for a login or repository, as GitHub's are stable."""
    return zlib.crc32(name.lower().encode()) % 90_000_000 + 1_000
