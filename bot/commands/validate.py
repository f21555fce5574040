"""``promotion-bot validate [PATH ...]``: check request files, one line per problem.

Fast and side-effect free, so it runs as a pre-commit hook and first thing on a pull
request: it imports neither boto3 nor the training libraries.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.errors import BotError, InvalidRequest
from bot.settings import settings
from bot.validation import load_request


def run(args: argparse.Namespace) -> int:
    paths = _named(args.paths) if args.paths else _default()
    if args.base:
        print("promotion-bot validate: --base (rollout step checks) is not available yet; "
              "checked the files only", file=sys.stderr)
    invalid = 0
    for path in paths:
        try:
            load_request(path)
        except InvalidRequest as error:
            invalid += 1
            for problem in error.problems:
                print(problem)
    if invalid:
        print(f"{invalid} of {_files(len(paths))} invalid", file=sys.stderr)
        return 1
    print(f"{_files(len(paths))} ok")
    return 0


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
