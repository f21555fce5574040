"""What the history of a request file on main says: since when its challenger has served its
share, and which commit last changed what production retrains from.

The rollout rules (``bot.core.rollout_rules``) measure a step's soak from the moment its
share took effect; the retraining pipeline runs once per change of hyperparameters or data.
Git history records both moments; ``bot.adapters.request_files.history`` reads it into
``RequestVersion`` values, and these functions read them (pure).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.request import Request, retraining_key
from bot.core.rollout_rules import same_challenger


@dataclass(frozen=True)
class RequestVersion:
    """One version of a request file on a branch's first-parent line."""

    commit: str
    landed: datetime  # when the commit landed on the branch (its committer date, UTC)
    request: Request | None  # None: deleted here (``deleted``), or not a valid request
    deleted: bool = False


#: A request file's versions on one line of history, newest first.
History = Sequence[RequestVersion]


def previous_state(history: History) -> tuple[Request | None, datetime | None]:
    """The newest request of ``history`` and when its challenger's share took effect.

    That is the landing of the oldest version in the newest run of versions serving the same
    challenger at the same share; versions that do not parse are skipped, a deletion ends
    the run. ``(None, None)`` when the file does not exist at the newest commit.
    """
    newest: Request | None = None
    since: datetime | None = None
    for version, request in _valid(history, skip_invalid=True):
        if newest is None:
            newest = request
        elif not _same_share(request, newest):
            break
        since = version.landed
    return newest, since


def retrain_commit(history: History, current: Request) -> str | None:
    """The newest commit of ``history`` that gave the file ``current``'s retraining key.

    The retraining execution is named after it, so applying a later rollout-only change
    finds the execution already started, while a revert to older hyperparameters (a new
    commit changing them) starts a new one. None when the newest version does not have
    ``current``'s key (uncommitted edits, or a change not merged yet).
    """
    key = retraining_key(current)
    found: str | None = None
    for version, request in _valid(history, skip_invalid=False):
        if retraining_key(request) != key:
            break
        found = version.commit
    return found


def _valid(history: History, *, skip_invalid: bool) -> Iterator[tuple[RequestVersion, Request]]:
    """The versions that hold a request, newest first, until a deletion (or, unless
    ``skip_invalid``, a version that does not parse)."""
    for version in history:
        if version.deleted:
            return
        if version.request is None:
            if skip_invalid:
                continue
            return
        yield version, version.request


def _same_share(older: Request, newer: Request) -> bool:
    """Both serve the same challenger (as the rollout rules see it) at the same share, or none."""
    before, after = older.rollout.challenger, newer.rollout.challenger
    if before is None or after is None:
        return before is after
    return (same_challenger(older, newer) is not None
            and before.traffic_percent == after.traffic_percent)
