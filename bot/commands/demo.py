"""``promotion-bot demo``: the whole journey on the embedded default."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    # Only here: production never imports the stand-ins (they need moto).
    from bot.local import demo
    from bot.local.faults import FaultPlan

    faults = FaultPlan.load(Path(args.faults)) if args.faults else None
    demo.run(Path(args.dir) if args.dir else None, args.rows, faults=faults)
    return 0
