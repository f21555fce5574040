"""``promotion-bot history [TARGET]``: who requested, approved and applied what, and when."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.flows.audit_trail import trail
from bot.report.audit_trail import render


def run(args: argparse.Namespace) -> int:
    print(render(trail(Path(args.repo), args.target)))
    return 0
