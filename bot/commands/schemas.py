"""``promotion-bot schemas [--check]``: write the JSON Schemas generated from the models."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.report import schemas


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if args.check:
        stale = schemas.check(directory)
        for name in stale:
            print(f"{directory / name}: out of date; run `promotion-bot schemas` and commit it")
        if not stale:
            print(f"{directory}/ is up to date")
        return 1 if stale else 0
    written = schemas.write(directory)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{directory}/ is up to date")
    return 0
