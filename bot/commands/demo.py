"""``promotion-bot demo``: the whole journey on the embedded default."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from bot.local import demo

    demo.run(Path(args.dir) if args.dir else None, args.rows)
    return 0
