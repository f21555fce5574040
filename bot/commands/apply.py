"""``promotion-bot apply``: reconcile AWS to the request files changed by a push."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bot.adapters import git
from bot.adapters.github import GitHubHost
from bot.adapters.workflow_event import push_range_from_event
from bot.core.domain import Outcome
from bot.errors import AwsError, BotError
from bot.flows.apply import apply, stop_on_sigterm
from bot.report.apply_outcome import describe, outcomes_to_json


def push_range(repo: Path, before: str | None, after: str | None) -> tuple[str | None, str]:
    """The range to apply: as given, else the push event's, else ``HEAD~1..HEAD``."""
    if before is None and after is None:
        event = push_range_from_event(os.environ)
        if event is not None:
            return event
    end = after or "HEAD"
    if before is not None:
        return before, end
    return git.resolve(repo, f"{git.rev_parse(repo, end)}~1"), end


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    before, after = push_range(repo, args.before, args.after)
    shown = f"{before[:12] if before else '(start)'}..{git.rev_parse(repo, after)[:12]}"

    def report(outcome: Outcome) -> None:
        print(describe(outcome), flush=True)

    try:
        with stop_on_sigterm() as stop:
            outcomes = apply(repo, before, after, GitHubHost.from_env(), report=report,
                             stop=stop)
    except AwsError as error:
        raise BotError(
            f"AWS failed during apply: {error.explanation}. Production may be partly updated; "
            "every step is idempotent, so rerunning apply finishes the job"
        ) from error
    if args.outcomes:
        Path(args.outcomes).write_text(json.dumps(outcomes_to_json(outcomes), indent=2))
    if not outcomes:
        print(f"no request files changed in {shown}: nothing to apply")
    return 0
