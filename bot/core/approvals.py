"""Whether a merged pull request was approved, by GitHub's own rules (pure).

Apply checks this itself instead of trusting branch protection to have been set up:

- only a reviewer's latest state counts (a comment keeps it, a dismissal ends it);
- an approval counts only if it was given on the pull request's head at merge: what was
  approved is what was merged (an approval of an older head is stale);
- never the pull request's author's own, never a bot's (``type: Bot`` or a login ending in
  ``[bot]``), and only from people with write access (admin, maintain or write);
- changes requested by someone with write access block until they approve or are dismissed;
- when CODEOWNERS names owners for the request file, one of the approvals must be theirs;
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
class PullReviews:
    """A pull request's reviews and what judging them needs, as fetched from the code host."""

    number: int
    author: str
    head_sha: str  # the head at merge
    reviews: tuple[Review, ...]  # oldest first
    permissions: dict[str, str]  # reviewer login -> collaborator permission
    base_sha: str | None = None  # the base branch's commit (where CODEOWNERS is read)
    merge_sha: str | None = None


@dataclass(frozen=True)
class Verdict:
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


def judge(pull: PullReviews, required: int, code_owners: frozenset[str] | None = None,
          owners_of: str = "") -> Verdict:
    """Judge ``pull``'s reviews.

    ``code_owners`` is None when no CODEOWNERS line owns the request file; otherwise the
    (lower-case) logins of the reviewers who own it, and ``owners_of`` says whom CODEOWNERS
    names, for the refusal.
    """
    latest: dict[str, Review] = {}
    for review in pull.reviews:
        if review.state in _STATEFUL:
            latest[review.login.lower()] = review
    author = pull.author.lower()
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
        counted.append(who)
    if code_owners is not None and not any(login.lower() in code_owners for login in counted):
        blocked = True
        problems.append(f"no approval by a code owner of the request file ({owners_of})")
    if not latest:
        problems.append("no review")
    return Verdict(pull.number, tuple(sorted(counted)), required, tuple(problems), blocked)
