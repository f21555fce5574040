"""The ``promotion-bot`` command line: parses arguments and dispatches, nothing else.

Each command lives in ``bot/commands/<name>.py`` as ``run(args) -> exit code`` and is
imported only when chosen, so ``--help`` and ``validate`` start fast.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from bot import __version__
from bot.errors import BotError, InvalidRequest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promotion-bot",
        description="Promote a model through a pull request: plan on the PR, apply on merge, "
        "roll back by revert.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "validate", help="check request files; one PATH:LINE: FIELD: REASON per error")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="request files (default: every file under promotion-requests/)")
    p.add_argument("--base", metavar="REV",
                   help="also check rollout steps against the request at this git revision")

    p = sub.add_parser(
        "plan", help="train, evaluate and compare a request; show what merging changes")
    p.add_argument("path", metavar="PATH", help="the request file")
    p.add_argument("--out", metavar="DIR", help="where to write comment.md, plan.json and PNGs")
    p.add_argument("--embedded", action="store_true",
                   help="run against an in-process local AWS (moto) for this one run")
    p.add_argument("--base", metavar="REV", help="git revision main is at (for drift and rollout)")
    p.add_argument("--no-github", action="store_true", help="do not comment even if on GitHub")
    p.add_argument("--head", metavar="SHA",
                   help="the pull request's head commit to set the status on (default: the "
                   "event's, else HEAD); the trusted plan workflow passes it")
    p.add_argument("--pull-request", metavar="N", type=int,
                   help="the pull request to comment on (default: the event's)")
    p.add_argument("--rows", type=int, default=284_807,
                   help="with --embedded: rows of sample data to create")

    p = sub.add_parser(
        "compare", help="compare two model files on a test file, with the gates plan checks")
    p.add_argument("candidate", metavar="CANDIDATE",
                   help="the candidate's model.tar.gz, or an XGBoost JSON/UBJ model file")
    p.add_argument("champion", metavar="CHAMPION", help="the champion's model file, same forms")
    p.add_argument("--test", required=True, metavar="DATA",
                   help="test data: a Parquet file or s3://BUCKET/KEY")
    p.add_argument("--request", metavar="REQ",
                   help="take gates and target column from this request (default: the "
                   "format's defaults)")
    p.add_argument("--json", action="store_true",
                   help="print metrics, differences, intervals, verdicts and gates as JSON")
    p.add_argument("--feature-columns", metavar="A,B,...",
                   help="for a model file without feature names: its columns in training "
                   "order, comma-separated (default: the request's data.feature_columns); "
                   "such a model is never scored by position")

    p = sub.add_parser("apply", help="reconcile AWS to the request files changed in a git range")
    p.add_argument("--before", metavar="REV",
                   help="start of the range (default: push event, else HEAD~1)")
    p.add_argument("--after", metavar="REV",
                   help="end of the range (default: push event, else HEAD)")
    p.add_argument("--repo", metavar="DIR", default=".", help="the git repository (default: .)")
    p.add_argument("--outcomes", metavar="FILE",
                   help="also write what apply did, per target, to FILE as JSON")

    p = sub.add_parser("rollback-parameters", help="restore SSM hyperparameters from a backup")
    p.add_argument("backup_key", metavar="BACKUP_KEY")
    p.add_argument("--target", default="fraud-detection")

    p = sub.add_parser("history", help="print the promotion audit trail from git and stored plans")
    p.add_argument("target", nargs="?", metavar="TARGET")
    p.add_argument("--repo", metavar="DIR", default=".")

    p = sub.add_parser("break-lock", help="remove a stale apply lock of a target")
    p.add_argument("target", metavar="TARGET")

    p = sub.add_parser(
        "stop-training", help="stop the running training jobs a pull request alone waits for "
        "(the plan workflow runs it when the pull request is closed)")
    p.add_argument("--pull-request", metavar="N", type=int, required=True,
                   help="the pull request whose training jobs to stop")
    p.add_argument("--target", metavar="TARGET", action="append",
                   help="look in this target (repeatable; default: the targets of the request "
                   "files in promotion-requests/)")

    p = sub.add_parser("sample-data", help="write synthetic fraud data shaped like the public set")
    p.add_argument("--out", required=True, metavar="DIR|s3://BUCKET/PREFIX")
    p.add_argument("--rows", type=int, default=284_807)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("local-aws", help="run moto's server on 127.0.0.1 with production set up")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--rows", type=int, default=284_807, help="rows of sample data to create")
    p.add_argument("--faults", metavar="FILE",
                   help="YAML fault plan: which calls fail, how and how often (see "
                        "bot/local/faults.py)")

    p = sub.add_parser("schemas", help="write (or --check) the JSON Schemas in schemas/")
    p.add_argument("--check", action="store_true", help="fail if schemas/ is out of date")
    p.add_argument("--dir", default="schemas")

    p = sub.add_parser("demo", help="run the whole journey on the embedded default")
    p.add_argument("--dir", metavar="DIR", help="where to leave the repository and outputs")
    p.add_argument("--rows", type=int, default=284_807, help="rows of sample data")
    p.add_argument("--faults", metavar="FILE",
                   help="YAML fault plan: AWS and GitHub fail by it during the journey")
    return parser


def describe(error: Exception) -> str:
    """One line for an unexpected failure: outside systems' errors say what failed."""
    origin = type(error).__module__.split(".")[0]
    if origin in ("botocore", "boto3"):
        from bot.adapters.aws.clients import explain

        return f"AWS request failed: {explain(error)}"
    if origin == "github":
        return f"GitHub request failed: {type(error).__name__}"
    return (f"internal error ({type(error).__name__}: {error}); "
            "set PROMOTION_BOT_DEBUG=1 to see the traceback and please report it")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    module = importlib.import_module(f"bot.commands.{args.command.replace('-', '_')}")
    try:
        code: int = module.run(args)
    except InvalidRequest as error:
        for problem in error.problems:  # already PATH:LINE: FIELD: REASON
            print(problem, file=sys.stderr)
        return error.exit_code
    except BotError as error:
        print(f"promotion-bot {args.command}: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("promotion-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a failure of AWS, GitHub or the bot: one line, no traceback
        if os.environ.get("PROMOTION_BOT_DEBUG"):
            raise
        print(f"promotion-bot {args.command}: {describe(error)}", file=sys.stderr)
        return 2
    return code


def run() -> None:
    """The ``promotion-bot`` executable: ``main``, then the process's exit.

    Every object the run's modules made is frozen first, so that the collector's passes at
    interpreter shutdown skip them: after a plan (pandas, xgboost, boto3, pydantic) those
    passes took a third of a second, only to free memory that exiting frees anyway.
    Finalizers and ``atexit`` still run; ``main`` stays collectable for callers in process.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
