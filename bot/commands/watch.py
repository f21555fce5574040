"""``promotion-bot watch``: brake a challenger whose alarm fires, and open its revert."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bot.adapters import git
from bot.adapters.github import GitHubHost
from bot.errors import BotError
from bot.flows.watch import Git, Watched, watch


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    base = args.base or git.output(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    if base == "HEAD":
        raise BotError(f"{repo} is on no branch: check out the default branch or pass --base")
    remote = args.remote or os.environ.get("PROMOTION_BOT_GIT_REMOTE") or "origin"
    where = Git(repo, base, remote, os.environ.get("GITHUB_TOKEN") or None)

    def report(watched: Watched) -> None:
        print(watched.line, flush=True)

    done = watch(where, GitHubHost.from_env(), report=report)
    if any(w.failed for w in done):
        return 2
    return 1 if any(w.github_failed for w in done) else 0
