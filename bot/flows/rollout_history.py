"""What git history says about a request file: since when its challenger has served its
share, and which commit last changed what production retrains from.

The rollout rules (``bot.rollout_rules``) measure a step's soak from the moment its share
took effect; the retraining pipeline runs once per change of hyperparameters or data. Git
history records both moments, so they are read from there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from bot.adapters import git
from bot.adapters.request_files import parse_request_text
from bot.core.request import Request, retraining_key
from bot.core.rollout_rules import Soak, _same_challenger, check_rollout_step, soak_of
from bot.errors import BotError, InvalidRequest, Problem


def rollout_problems(repo: Path, base: str | None, path: str, request: Request,
                     lines: dict[str, int], now: datetime, shown: str | None = None
                     ) -> list[Problem]:
    """The staged-rollout rules for ``request`` (the file ``path`` of ``repo``) moving on
    from the request at ``base`` and its history; ``base`` None: nothing serves it yet, so a
    challenger starts at the first step. The one check behind ``validate --base``, ``plan``
    and ``apply``; problems name the file as ``shown`` (default ``path``)."""
    previous, since = previous_state(repo, base, path) if base is not None else (None, None)
    return check_rollout_step(shown or path, request, lines, previous, since, now)


def current_soak(repo: Path, base: str, path: str, request: Request) -> Soak | None:
    """How long the challenger of ``request`` has served its share on ``base``, against its
    step's minimum soak (None when it does not serve there yet)."""
    previous, since = previous_state(repo, base, path)
    return soak_of(previous, request, since)


def previous_state(repo: Path, rev: str, path: str) -> tuple[Request | None, datetime | None]:
    """The request at ``rev`` and when (UTC) its challenger's share took effect there.

    That is the commit date of the oldest version in the newest run of versions serving
    the same challenger at the same share; versions that do not parse are skipped, a
    deletion ends the run. ``(None, None)`` when ``path`` does not exist at ``rev``.
    """
    newest: Request | None = None
    since: datetime | None = None
    for _, committed, request in _versions(repo, rev, path, skip_invalid=True):
        if newest is None:
            newest = request
        elif not _same_share(request, newest):
            break
        since = committed
    return newest, since


def retrain_commit(repo: Path, rev: str, path: str, current: Request) -> str | None:
    """The newest commit on ``rev``'s line that gave ``path`` its current retraining key.

    The retraining execution is named after it, so applying a later rollout-only change
    finds the execution already started, while a revert to older hyperparameters (a new
    commit changing them) starts a new one. None when ``rev``'s version is not ``current``'s
    key (uncommitted edits, or a PR head ahead of ``rev``).
    """
    key = retraining_key(current)
    found: str | None = None
    for sha, _, request in _versions(repo, rev, path, skip_invalid=False):
        if retraining_key(request) != key:
            break
        found = sha
    return found


def locate(file: str | Path) -> tuple[Path, str]:
    """The git work tree holding ``file`` and the file's path in it (what git log takes)."""
    folder = Path(file).parent.resolve()
    try:
        top = git.toplevel(folder)
    except BotError:
        raise BotError(f"{file}: not in a git repository, so its rollout history "
                       "cannot be read") from None
    return top, (folder / Path(file).name).relative_to(top.resolve()).as_posix()


def _versions(repo: Path, rev: str, path: str, *, skip_invalid: bool
              ) -> Iterator[tuple[str, datetime, Request]]:
    """The versions of ``path`` that landed on ``rev``'s line, newest first, until a deletion
    (or, unless ``skip_invalid``, a version that does not parse)."""
    for sha, committed in git.landed(repo, rev, path):
        try:
            text = git.show(repo, sha, path)
            if text is None:
                return
            request, _ = parse_request_text(text, path)
        except (InvalidRequest, git.NotAFile):
            if skip_invalid:
                continue
            return
        yield sha, committed, request


def _same_share(older: Request, newer: Request) -> bool:
    """Both serve the same challenger (as the rollout rules see it) at the same share, or none."""
    before, after = older.rollout.challenger, newer.rollout.challenger
    if before is None or after is None:
        return before is after
    return (_same_challenger(older, newer) is not None
            and before.traffic_percent == after.traffic_percent)
