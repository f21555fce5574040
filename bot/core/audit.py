"""The audit trail's values: a commit of the repository, and one change of a request file
with what the bot knows about it (its stored plan, the applies of it, what it reverts).

``bot.adapters.git`` reads commits, ``bot.flows.audit_trail`` joins them with stored plans
and apply records, ``bot.report.audit_trail`` prints them: the values live below all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type here: ``validate`` reads commits without the plan's values
    from bot.core.apply_record import ApplyRecord
    from bot.core.domain import Plan

_REVERTS = re.compile(r"^This reverts commit ([0-9a-f]{7,64})\b", re.MULTILINE)


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    email: str
    date: str  # ISO 8601, author date
    subject: str
    body: str

    @property
    def reverts(self) -> str | None:
        """The commit this one reverts, from git revert's message; None otherwise."""
        found = _REVERTS.search(self.body)
        return found.group(1) if found else None


@dataclass(frozen=True)
class Entry:
    """One commit that changed a request file, with what the bot knows about it."""

    target: str
    path: str
    commit: Commit
    pull_request: int | None
    content_sha256: str | None  # None when the file was deleted or unreadable
    experiment_id: str | None
    plan: Plan | None  # the plan its reviewers saw: the last signed plan of reviewed_head
    applies: tuple[ApplyRecord, ...]
    reverts: Commit | None
    deleted: bool = False  # the commit deleted the request file
    note: str = ""
    reviewed_head: str | None = None  # the pull request head that was merged
    plan_digest: str | None = None  # the stored name of ``plan`` (plans/sha256/<digest>/)
    #: The planned model's state in the Model Registry now: (status, why), or None when
    #: it is not registered (or the registry was not read).
    registry: tuple[str, str | None] | None = None
