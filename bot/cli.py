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
import textwrap
from collections.abc import Sequence

from bot import __version__
from bot.errors import BotError, InvalidRequest

#: The exit codes every command shares, in each command's epilog after its own.
_ERROR_EXIT = ("2   invalid input (one line per problem), a failure of AWS or GitHub, or a "
               "usage error")


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str,
             description: str, exits: str, error_exit: str = _ERROR_EXIT
             ) -> argparse.ArgumentParser:
    """A subcommand: its one-line ``summary`` in the command list, what it does in its
    ``--help``, and its exit codes in the epilog."""
    codes = [*exits.splitlines(), error_exit, "130 interrupted"]
    epilog = "\n".join(textwrap.fill(code, 79, subsequent_indent="    ") for code in codes)
    return sub.add_parser(name, help=summary, description=textwrap.fill(description, 79),
                          epilog=f"exit codes:\n{epilog}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promotion-bot",
        description="Promote a model through a pull request: plan on the PR, apply on merge, "
        "roll back by revert.",
        epilog="Run `promotion-bot COMMAND --help` for what a command does, its arguments "
        "with their defaults, and its exit codes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(
        sub, "validate", "check request files; one PATH:LINE: FIELD: REASON per error",
        "Check promotion request files without data, AWS or GitHub: the format, every "
        "field's type and range, the file name as a target's name, safe YAML, and with --base "
        "the staged-rollout rules against the request at that revision. Every check plan "
        "makes before it trains; suggests the closest name for a misspelt field or value. "
        "Prints one PATH:LINE: FIELD: REASON line per problem.",
        "0   every file is valid\n1   a file is invalid (its problems are printed)",
        "2   cannot check: a --base that is not a commit, no promotion-requests/ folder, "
        "invalid settings, or a usage error")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="request files, or folders of them (default: every .yaml/.yml file "
                   "under promotion-requests/)")
    p.add_argument("--base", metavar="REV",
                   help="also check each rollout step against the request at this git "
                   "revision and its history, e.g. the pull request's base (default: no "
                   "rollout check)")

    p = _command(
        sub, "plan", "train, evaluate and compare a request; show what merging changes",
        "Plan one request: first every check validate makes, then train the candidate (or "
        "reuse the stored evaluation of the same content), evaluate it on the test data, "
        "compare it with the production champion, check the gates and list what merging "
        "would change in AWS. Writes comment.md, the signed plan.json and the PNGs, and on "
        "a pull request posts the comment and sets the commit status.",
        "0   every gate passes\n1   a gate fails")
    p.add_argument("path", metavar="PATH", help="the request file")
    p.add_argument("--out", metavar="DIR",
                   help="where to write comment.md, plan.json and the PNGs (default: a new "
                   "temporary folder, named on stderr)")
    p.add_argument("--embedded", action="store_true",
                   help="run against a local AWS (moto) set up for this one run, with sample "
                   "data; never comments (default: the AWS the environment points at)")
    p.add_argument("--base", metavar="REV",
                   help="the git revision main is at, for the rollout rules (default: "
                   "origin/$GITHUB_BASE_REF on a pull request, else no rollout check)")
    p.add_argument("--no-github", action="store_true",
                   help="do not comment or set a status even on GitHub (default: comment when "
                   "run by a pull request's workflow)")
    p.add_argument("--head", metavar="SHA",
                   help="the pull request's head commit to set the status on (default: the "
                   "event's, else HEAD); the trusted plan workflow passes it")
    p.add_argument("--pull-request", metavar="N", type=int,
                   help="the pull request to comment on (default: the event's)")
    p.add_argument("--rows", type=int, default=284_807,
                   help="with --embedded: rows of sample data to create (default: 284807)")

    p = _command(
        sub, "compare", "compare two model files on a test file, with the gates plan checks",
        "Compare a candidate model with a champion model on a test file exactly as plan "
        "would: same scoring, paired 95 % intervals, verdicts and gates. Needs no pull "
        "request and no production.",
        "0   every gate passes\n1   a gate fails")
    p.add_argument("candidate", metavar="CANDIDATE",
                   help="the candidate's model.tar.gz, or an XGBoost JSON/UBJ model file")
    p.add_argument("champion", metavar="CHAMPION", help="the champion's model file, same forms")
    p.add_argument("--test", required=True, metavar="DATA",
                   help="test data: a Parquet file or s3://BUCKET/KEY (required)")
    p.add_argument("--request", metavar="REQ",
                   help="take the gates and the label column from this request (default: the "
                   "format's defaults)")
    p.add_argument("--json", action="store_true",
                   help="print metrics, differences, intervals, verdicts and gates as JSON "
                   "(default: a table)")
    p.add_argument("--feature-columns", metavar="A,B,...",
                   help="for a model file without feature names: its columns in training "
                   "order, comma-separated (default: the request's data.feature_columns); "
                   "such a model is never scored by position")

    p = _command(
        sub, "apply", "reconcile AWS to the request files changed in a git range",
        "Apply merged promotions: for each request file changed in the range (and any that "
        "production does not match yet), check that its exact content has a passing plan "
        "signed by the plan job, that the reviewed model is intact, that the rollout step is "
        "allowed and that the pull request was approved; then back up and write the SSM "
        "hyperparameters, write the production config, start the retraining pipeline and "
        "set the challenger's traffic. Refusals change nothing.",
        "0   applied, or nothing to apply\n"
        "1   refused: not planned, not approved, a rollout step the rules forbid, or another "
        "apply holds the lock\n"
        "3   AWS undid a change (SageMaker rolled the endpoint update back, e.g. an alarm "
        "fired during its baking period): production serves the previous models and the "
        "production config says so")
    p.add_argument("--before", metavar="REV",
                   help="start of the range (default: the push event's, else HEAD~1)")
    p.add_argument("--after", metavar="REV",
                   help="end of the range (default: the push event's, else HEAD)")
    p.add_argument("--repo", metavar="DIR", default=".",
                   help="the git repository (default: .)")
    p.add_argument("--outcomes", metavar="FILE",
                   help="also write what apply did, per target, to FILE as JSON (default: "
                   "not written)")

    p = _command(
        sub, "watch", "brake a challenger whose alarm fires and open the revert pull request",
        "For each request file of the checked-out branch: read the production config and "
        "the endpoint, and the alarms that guard the challenger (the request at the "
        "config's commit). When one is in ALARM while the challenger serves traffic: set "
        "the challenger's weight to 0 at once, record the incident in S3, reject its model "
        "in the Model Registry, push a branch reverting the config's commit, open its pull "
        "request and comment on the pull request that merged the change. Idempotent: one "
        "revert pull request per incident. OK and INSUFFICIENT_DATA never brake. A target "
        "that cannot be watched is said in one line (exit 2) and the others are still "
        "watched.",
        "0   watched: nothing fired, or braked and the revert pull request is open\n"
        "1   braked, but the revert pull request could not be opened (GitHub unreachable); "
        "the next run opens it")
    p.add_argument("--repo", metavar="DIR", default=".",
                   help="the git repository, on its default branch (default: .)")
    p.add_argument("--remote", metavar="REMOTE",
                   help="where to push the revert branch: a remote's name or URL (default: "
                   "$PROMOTION_BOT_GIT_REMOTE, else origin); an https remote is pushed to "
                   "with $GITHUB_TOKEN, which is never printed")
    p.add_argument("--base", metavar="BRANCH",
                   help="the branch the revert goes onto and its pull request into "
                   "(default: the checked-out branch)")

    p = _command(
        sub, "rollback-parameters", "restore SSM hyperparameters from a backup",
        "Put the hyperparameters of a timestamped backup (apply makes one before every "
        "write) back into SSM. The production config and the endpoint are left as they "
        "are; to roll back a whole promotion, revert its merge.",
        "0   restored")
    p.add_argument("backup_key", metavar="BACKUP_KEY",
                   help="the backup to restore: its SSM name as apply printed it, or just "
                   "its timestamp")
    p.add_argument("--target", metavar="TARGET", default="fraud-detection",
                   help="the target whose hyperparameters to restore (default: "
                   "fraud-detection)")

    p = _command(
        sub, "history", "print the promotion audit trail from git and stored plans",
        "Print who requested, approved, applied and reverted what, and when: read from the "
        "git history of the request files and the stored plans.",
        "0   printed")
    p.add_argument("target", nargs="?", metavar="TARGET",
                   help="only this target (default: every target)")
    p.add_argument("--repo", metavar="DIR", default=".",
                   help="the git repository (default: .)")

    p = _command(
        sub, "break-lock", "remove a stale apply lock of a target",
        "Remove the apply lock of a target that an apply left behind when it died (a lock "
        "expires by itself after a while). Prints who held it.",
        "0   removed, or there was no lock")
    p.add_argument("target", metavar="TARGET", help="the target whose lock to remove")

    p = _command(
        sub, "stop-training", "stop the running training jobs a pull request alone waits for "
        "(the plan workflow runs it when the pull request is closed)",
        "Stop the running SageMaker training jobs that this pull request alone waits for; a "
        "job another pull request waits for too is left running. Prints one line per job.",
        "0   stopped what was to stop")
    p.add_argument("--pull-request", metavar="N", type=int, required=True,
                   help="the pull request whose training jobs to stop (required)")
    p.add_argument("--target", metavar="TARGET", action="append",
                   help="look in this target (repeatable; default: the targets of the request "
                   "files in promotion-requests/)")

    p = _command(
        sub, "sample-data", "write synthetic fraud data shaped like the public set",
        "Write train.parquet and test.parquet: synthetic card transactions with the public "
        "fraud set's columns (Time, V1..V28, Amount, Class) and its 0.172 % fraud rate.",
        "0   written")
    p.add_argument("--out", required=True, metavar="DIR|s3://BUCKET/PREFIX",
                   help="where to write the two files (required)")
    p.add_argument("--rows", type=int, default=284_807,
                   help="rows in all, split 80/20 into train and test (default: 284807)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed: the same seed writes the same data (default: 0)")

    p = _command(
        sub, "local-aws", "run moto's server on 127.0.0.1 with production set up",
        "Run a local AWS (moto's server) on 127.0.0.1 with production set up: buckets, SSM "
        "parameters, the retraining pipeline, a champion on the endpoint and sample data. "
        "Prints the export lines that point the bot at it; serves until Ctrl-C.",
        "0   stopped with Ctrl-C")
    p.add_argument("--port", type=int, default=5000,
                   help="the port to listen on (default: 5000)")
    p.add_argument("--rows", type=int, default=284_807,
                   help="rows of sample data to create (default: 284807)")
    p.add_argument("--faults", metavar="FILE",
                   help="YAML fault plan: which calls fail, how and how often (see "
                   "docs/chaos-faults.yaml; default: no faults)")

    p = _command(
        sub, "schemas", "write (or --check) the JSON Schemas in schemas/",
        "Write the JSON Schemas of the request format and the production config, generated "
        "from the bot's models, for editors and other tools; --check only compares.",
        "0   written, or up to date\n1   with --check: a schema is out of date")
    p.add_argument("--check", action="store_true",
                   help="write nothing; fail if a schema is out of date (default: write)")
    p.add_argument("--dir", metavar="DIR", default="schemas",
                   help="the folder of the schemas (default: schemas)")

    p = _command(
        sub, "demo", "run the whole journey on the embedded default",
        "Run the whole journey against a local AWS and a local GitHub: a request's pull "
        "request, its plan comment, approval, merge and apply, a training job, a revert, a "
        "staged rollout to promotion, and the audit trail. Leaves the repository and every "
        "output in a folder it names.",
        "0   the journey ran")
    p.add_argument("--dir", metavar="DIR",
                   help="where to leave the repository and outputs (default: a new "
                   "temporary folder)")
    p.add_argument("--rows", type=int, default=284_807,
                   help="rows of sample data (default: 284807)")
    p.add_argument("--faults", metavar="FILE",
                   help="YAML fault plan: AWS and GitHub fail by it during the journey "
                   "(default: no faults)")
    return parser


#: The top-level modules of the ``bot`` extra (pyproject.toml): a base install, such as the
#: pre-commit hook's, has none of them, which is enough for ``validate`` and ``schemas``.
RUNTIME_MODULES = frozenset({
    "boto3", "botocore", "s3transfer", "jsonschema", "github", "numpy", "pandas", "pyarrow",
    "PIL", "xgboost", "moto", "flask", "flask_cors", "werkzeug", "sagemaker_core",
})


def describe(error: Exception) -> str:
    """One line for an unexpected failure: outside systems' errors say what failed."""
    if (isinstance(error, ModuleNotFoundError)
            and (error.name or "").split(".")[0] in RUNTIME_MODULES):
        return (f"needs the bot's runtime, which this install lacks ({error.name} is not "
                "installed): pip install 'promotion-bot[bot]'")
    origin = type(error).__module__.split(".")[0]
    if origin == "github":
        return f"GitHub request failed: {type(error).__name__}"
    return (f"internal error ({type(error).__name__}: {error}); "
            "set PROMOTION_BOT_DEBUG=1 to see the traceback and please report it")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        module = importlib.import_module(f"bot.commands.{args.command.replace('-', '_')}")
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
