"""A request file's history in its git repository, read for the rollout rules and the
retraining pipeline (``bot.core.request_history`` reads it; this module finds and reads it).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.adapters import git
from bot.adapters.request_files import history
from bot.core import request_history
from bot.core.request import Request
from bot.core.rollout_rules import check_rollout_step
from bot.errors import BotError, Problem


def rollout_problems(repo: Path, base: str | None, path: str, request: Request,
                     lines: dict[str, int], now: datetime, shown: str | None = None
                     ) -> list[Problem]:
    """The staged-rollout rules for ``request`` (the file ``path`` of ``repo``) moving on
    from the request at ``base`` and its history; ``base`` None: nothing serves it yet, so a
    challenger starts at the first step. The one check behind ``validate --base``, ``plan``
    and ``apply``; problems name the file as ``shown`` (default ``path``)."""
    previous, since = previous_state(repo, base, path) if base is not None else (None, None)
    return check_rollout_step(shown or path, request, lines, previous, since, now)


def previous_state(repo: Path, rev: str, path: str) -> tuple[Request | None, datetime | None]:
    """The request at ``rev`` and when its challenger's share took effect there
    (``bot.core.request_history.previous_state``)."""
    return request_history.previous_state(history(repo, rev, path))


def retrain_commit(repo: Path, rev: str, path: str, current: Request) -> str | None:
    """The newest commit on ``rev``'s line that gave ``path`` its current retraining key
    (``bot.core.request_history.retrain_commit``)."""
    return request_history.retrain_commit(history(repo, rev, path), current)


def locate(file: str | Path) -> tuple[Path, str]:
    """The git work tree holding ``file`` and the file's path in it (what git log takes)."""
    folder = Path(file).parent.resolve()
    try:
        top = git.toplevel(folder)
    except BotError:
        raise BotError(f"{file}: not in a git repository, so its rollout history "
                       "cannot be read") from None
    return top, (folder / Path(file).name).relative_to(top.resolve()).as_posix()
