"""``promotion-bot break-lock TARGET``: remove a stale apply lock left by a run that died."""

from __future__ import annotations

import argparse

from bot.errors import BotError, is_aws_error
from bot.settings import target


def run(args: argparse.Namespace) -> int:
    from bot.adapters.aws import lock

    t = target(args.target)
    try:
        holder = lock.holder(t)
        removed = lock.break_lock(t)
    except Exception as error:
        if is_aws_error(error):
            raise BotError(f"AWS failed while removing {lock.uri(t)}: {error}") from error
        raise
    if not removed:
        print(f"{t.name}: no apply lock ({lock.uri(t)})")
        return 0
    who = holder.describe() if holder is not None else "unknown"
    print(f"{t.name}: removed the apply lock held by {who}")
    return 0
