"""``promotion-bot sample-data``: write synthetic fraud data shaped like the public set."""

from __future__ import annotations

import argparse

from bot.adapters.data_files import write_sample


def run(args: argparse.Namespace) -> int:
    for written in write_sample(args.out, rows=args.rows, seed=args.seed):
        print(f"wrote {written}")
    return 0
