"""``promotion-bot local-aws``: moto's server on 127.0.0.1 with production set up, until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    # Only here: production never imports the stand-ins (they need moto).
    from bot.local.aws_server import LocalAWS
    from bot.local.bootstrap import bootstrap
    from bot.local.faults import FaultPlan

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    plan = FaultPlan.load(Path(args.faults)) if args.faults else None  # bad file: before serving
    with LocalAWS(port=args.port) as aws:
        say(f"local AWS (moto) listening on {aws.url}")
        bootstrap(rows=args.rows, progress=say)
        if plan is not None:
            aws.inject(plan)
            say(f"injecting failures from {args.faults}: {len(plan.rules)} rule(s), "
                f"seed {plan.seed}")
        say("\nPoint the bot (or any boto3 code) at it from another shell:\n")
        print("\n".join(aws.export_lines()), flush=True)
        say("\nServing until Ctrl-C; requests are logged below.")
        logging.getLogger("werkzeug").setLevel(logging.INFO)
        _serve_until_stopped()
        say("\nstopping local AWS")
    return 0


def _serve_until_stopped() -> None:
    """Block the main thread while the server thread answers; Ctrl-C or SIGTERM ends it."""
    stop = threading.Event()
    previous = {n: signal.signal(n, lambda *_: stop.set()) for n in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    try:
        stop.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
