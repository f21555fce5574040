"""``promotion-bot break-lock TARGET``: remove a stale apply lock left by a run that died."""

from __future__ import annotations

import argparse

from bot.adapters.aws import lock
from bot.errors import AwsError, BotError
from bot.settings import target


def run(args: argparse.Namespace) -> int:
    t = target(args.target)
    try:
        holder = lock.holder(t)
        removed = lock.break_lock(t)
    except AwsError as error:
        raise BotError(f"AWS failed while removing {lock.uri(t)}: {error.explanation}") from error
    if not removed:
        print(f"{t.name}: no apply lock ({lock.uri(t)})")
        return 0
    who = holder.describe() if holder is not None else "unknown"
    print(f"{t.name}: removed the apply lock held by {who}")
    return 0
