"""Whether a merged pull request was approved, by GitHub's own rules (pure).

Apply checks this itself instead of trusting branch protection to have been set up:

- only a reviewer's latest state counts (a comment keeps it, a dismissal ends it);
- an approval counts only if it was given on the pull request's head at merge: what was
  approved is what was merged (an approval of an older head is stale);
- never the pull request's author's own, never a bot's (``type: Bot`` or a login ending in
  ``[bot]``), and only from people with write access (admin, maintain or write);
- the most recent reviewable push must be approved by someone other than the person who
  pushed it (branch protection's "Require approval of the most recent reviewable push",
  https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches#require-pull-request-reviews-before-merging).
  Read conservatively: an approval does not count from the pusher of that push, nor from
  anyone who authored or committed a commit it brought. The signals (see ``last_pushers``):
  the push that made the merged head the branch's head, with its pusher and the head before
  it, from the repository's activity (``GET /repos/{owner}/{repo}/activity``, pushes and
  force pushes of the head branch); and the GitHub logins of each commit's author and
  committer from the pull request's commits (``GET /repos/{owner}/{repo}/pulls/{n}/commits``).
  The push's commits are those after its ``before`` among the pull request's commits, or
  all of them when ``before`` is not one (a new branch, a force push). When no push of the
  merged head is known, or the listed commits (at most 250) do not reach it, who pushed or
  wrote it is unknown and no approval counts;
- changes requested by someone with write access block until they approve or are dismissed;
- when CODEOWNERS names owners for the request file, one of the approvals must be theirs
  (CODEOWNERS is read by the caller where GitHub reads it: on the base branch as it is when
  merging, the merge commit's first parent);
- ``required`` approvals are needed (a setting, default 1).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Collaborator permissions (``permission`` or ``role_name``) that can approve a merge.
WRITE = frozenset({"admin", "maintain", "write"})
_STATEFUL = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")


def is_bot(login: str, user_type: str | None) -> bool:
    return user_type == "Bot" or login.lower().endswith("[bot]")


@dataclass(frozen=True)
class Review:
    """One submitted review, as the API lists it."""

    login: str
    bot: bool
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED or DISMISSED
    commit_id: str | None  # the head the review was given on


@dataclass(frozen=True)
class PullCommit:
    """One commit of the pull request, with the GitHub logins its author and committer
    e-mails belong to (None: an e-mail no account claims)."""

    sha: str
    author: str | None
    committer: str | None


@dataclass(frozen=True)
class Push:
    """The push that made the merged head the head of the pull request's branch."""

    pusher: str | None  # the login that pushed; None: GitHub names nobody
    before: str | None  # the branch's head before the push; None or zeros: a new branch


@dataclass(frozen=True)
class PullReviews:
    """A pull request's reviews and what judging them needs, as fetched from the code host."""

    number: int
    author: str
    head_sha: str  # the head at merge
    reviews: tuple[Review, ...]  # oldest first
    permissions: dict[str, str]  # reviewer login -> collaborator permission
    merge_sha: str | None = None  # its first parent is the base as merged (CODEOWNERS)
    commits: tuple[PullCommit, ...] = ()  # oldest first, as GitHub lists them
    last_push: Push | None = None  # None: no push of the head is known


@dataclass(frozen=True)
class ApprovalCount:
    """Which approvals count and, when they are not enough, exactly why."""

    number: int
    approvers: tuple[str, ...]  # counted, sorted
    required: int
    problems: tuple[str, ...]  # reviews that did not count, and what blocks
    blocked: bool  # outstanding changes requested, or no code owner approved

    @property
    def approved(self) -> bool:
        return not self.blocked and len(self.approvers) >= self.required

    def refusal(self) -> str:
        """One line: every reason, then the count."""
        reasons = [*self.problems,
                   f"{len(self.approvers)} of {self.required} required approvals"]
        return f"PR #{self.number}: " + "; ".join(reasons)


def last_pushers(pull: PullReviews) -> dict[str, str]:
    """Everyone who pushed, authored or committed the most recent push of ``pull``'s head:
    lower-case login -> why, for the refusal. The push's commits are those after its
    ``before`` among the pull request's commits; all of them when ``before`` is not one of
    them (the branch's first push, a force push) or the push is unknown."""
    push = pull.last_push
    shas = [c.sha.lower() for c in pull.commits]
    before = (push.before or "").lower() if push is not None else ""
    start = shas.index(before) + 1 if before in shas else 0
    short = pull.head_sha[:7]
    people: dict[str, str] = {}
    if push is not None and push.pusher:
        people[push.pusher.lower()] = f"pushed the most recent push ({short})"
    for commit in pull.commits[start:]:
        for login, did in ((commit.author, "authored"), (commit.committer, "committed")):
            if login and login.lower() not in people:
                people[login.lower()] = (f"{did} commit {commit.sha[:7]} of the most recent "
                                         f"push ({short})")
    return people


def count_approvals(pull: PullReviews, required: int, code_owners: frozenset[str] | None = None,
          owners_of: str = "",
          also_owned: tuple[tuple[frozenset[str], str], ...] = ()) -> ApprovalCount:
    """Count ``pull``'s approvals: which reviews count, and what blocks the merge.

    ``code_owners`` is None when no CODEOWNERS line owns the request file; otherwise the
    (lower-case) logins of the reviewers who own it, and ``owners_of`` says whom CODEOWNERS
    names, for the refusal. ``also_owned``: more such (owners, whom) pairs, each of which
    needs an approval too (CODEOWNERS read at more than one commit when the base as merged
    is ambiguous).
    """
    latest: dict[str, Review] = {}
    for review in pull.reviews:
        if review.state in _STATEFUL:
            latest[review.login.lower()] = review
    author = pull.author.lower()
    pushers = last_pushers(pull)
    counted: list[str] = []
    problems: list[str] = []
    blocked = False
    for key in sorted(latest):
        review = latest[key]
        who = review.login
        if review.state == "DISMISSED":
            problems.append(f"the review by {who} was dismissed")
            continue
        approving = review.state == "APPROVED"
        what = "approval" if approving else "change request"
        if key == author:
            problems.append(f"{what} by {who} does not count: {who} opened the pull request")
            continue
        if review.bot or is_bot(who, None):
            problems.append(f"{what} by {who} does not count: it is a bot")
            continue
        permission = pull.permissions.get(review.login, pull.permissions.get(key, "none"))
        if permission not in WRITE:
            problems.append(f"{what} by {who} does not count: {who} has {permission} access, "
                            "not write")
            continue
        if not approving:
            blocked = True
            problems.append(f"{who} requested changes and has not approved since")
            continue
        if (review.commit_id or "").lower() != pull.head_sha.lower():
            problems.append(f"approval by {who} was given on {(review.commit_id or '?')[:7]}, "
                            f"not the merged head {pull.head_sha[:7]}")
            continue
        if key in pushers:
            problems.append(f"approval by {who} does not count: {who} {pushers[key]}; it needs "
                            "an approval by someone else")
            continue
        counted.append(who)
    if pull.last_push is None and counted:
        blocked = True
        problems.append(f"no push of the merged head {pull.head_sha[:7]} is known, so who "
                        "pushed it (who may not approve it) is unknown")
    elif counted and pull.head_sha.lower() not in (c.sha.lower() for c in pull.commits):
        # GitHub lists at most 250 commits of a pull request, the oldest: the latest push's
        # commits, and so their authors, are then not known.
        blocked = True
        problems.append(f"the pull request's commits as GitHub lists them do not reach its "
                        f"head {pull.head_sha[:7]} (it lists at most 250), so who wrote the "
                        "most recent push is unknown")
    owned = ([(code_owners, owners_of)] if code_owners is not None else []) + list(also_owned)
    for owners, whom in owned:
        if not any(login.lower() in owners for login in counted):
            blocked = True
            problems.append(f"no approval by a code owner of the request file ({whom})")
    if not latest:
        problems.append("no review")
    return ApprovalCount(pull.number, tuple(sorted(counted)), required, tuple(problems), blocked)
