"""``promotion-bot compare CANDIDATE CHAMPION --test DATA``: the plan's verdicts, offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.flows.compare import compare
from bot.report import compare_report


def run(args: argparse.Namespace) -> int:
    result = compare(Path(args.candidate), Path(args.champion), args.test,
                     Path(args.request) if args.request else None,
                     progress=lambda message: print(message, file=sys.stderr, flush=True),
                     feature_columns=(args.feature_columns.split(",")
                                      if args.feature_columns else None))
    if args.json:
        print(json.dumps(compare_report.to_json(result), indent=2))
    else:
        print(compare_report.to_text(result))
    return 0 if result.passed else 1
