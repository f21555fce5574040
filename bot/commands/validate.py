"""``promotion-bot validate [PATH ...] [--base REV]``: check request files, one line per problem.

Fast and side-effect free, so it runs as a pre-commit hook and first thing on a pull
request: it imports neither boto3 nor the training libraries. With ``--base`` it also
checks each rollout step against the request at that revision and its git history.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.adapters import git
from bot.adapters.request_files import load_target_request
from bot.core.request import Request
from bot.errors import BotError, InvalidRequest, Problem
from bot.flows.rollout_history import locate, rollout_problems
from bot.settings import settings

RolloutCheck = Callable[[str, Request, dict[str, int]], list[Problem]]


def run(args: argparse.Namespace) -> int:
    paths = _named(args.paths) if args.paths else _default()
    rollout = rollout_check(args.base, paths) if args.base else None
    invalid = 0
    for path in paths:
        try:
            request, lines = load_target_request(path)
        except InvalidRequest as error:
            problems = error.problems
        else:
            problems = rollout(path, request, lines) if rollout else []
        if problems:
            invalid += 1
            for problem in problems:
                print(problem)
    if invalid:
        print(f"{invalid} of {_files(len(paths))} invalid", file=sys.stderr)
        return 1
    print(f"{_files(len(paths))} ok")
    return 0


def rollout_check(base: str, paths: list[str]) -> RolloutCheck:
    """The rollout rules against ``base``; resolves it first, so a bad ``base`` fails alone."""
    now = datetime.now(UTC)
    where: dict[str, tuple[Path, str]] = {}
    commits: dict[Path, str] = {}
    for path in paths:
        if Path(path).parent.is_dir():  # else load_request reports the missing file
            root, relative = locate(path)
            where[path] = (root, relative)
            if root not in commits:
                try:
                    commits[root] = git.rev_parse(root, base)
                except BotError as error:
                    raise BotError(f"--base: {error.message}") from None

    def check(path: str, request: Request, lines: dict[str, int]) -> list[Problem]:
        root, relative = where[path]
        return rollout_problems(root, commits[root], relative, request, lines, now, path)

    return check


def request_files(directory: Path) -> list[str]:
    """Every ``*.yaml``/``*.yml`` file under ``directory``, named as the directory was."""
    return sorted(str(p) for p in directory.rglob("*")
                  if p.suffix in (".yaml", ".yml") and p.is_file())


def _named(given: list[str]) -> list[str]:
    """Files as named; a named directory stands for the request files under it."""
    return [path for name in given
            for path in (request_files(Path(name)) if Path(name).is_dir() else [name])]


def _default() -> list[str]:
    directory = Path(settings().requests_dir)
    if not directory.is_dir():
        raise BotError(f"no {directory}/ directory here: run from the repository root "
                       "or name the files to check")
    return request_files(directory)


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"
