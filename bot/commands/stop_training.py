"""``promotion-bot stop-training --pull-request N``: stop the training jobs of a pull request.

Closing a pull request (merged or not) runs this from the trusted plan workflow: every
running SageMaker training job of the request files' targets that the pull request alone
waits for is stopped, instead of running on until its ``max_runtime_minutes``. A job another
pull request also waits for is left running. By hand it works the same, with the plan role.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from bot.errors import AwsError, BotError
from bot.flows.sagemaker_training import stop_jobs_of_pull_request
from bot.settings import settings, target, target_name_problem

SUFFIXES = (".yaml", ".yml")


def target_names(requests_dir: Path) -> list[str]:
    """The targets of the request files in ``requests_dir``: their stems, sorted.

    A stem that cannot be a target is skipped with a note (``validate`` reports it).
    """
    if not requests_dir.is_dir():
        raise BotError(f"{requests_dir}/: no such folder of request files (run from the "
                       "repository's root, set PROMOTION_BOT_REQUESTS_DIR, or pass --target)")
    names = set()
    for path in requests_dir.iterdir():
        if path.suffix not in SUFFIXES or not path.is_file():
            continue
        problem = target_name_problem(path.stem)
        if problem is None:
            names.add(path.stem)
        else:
            print(f"skipping {path}: {problem}", file=sys.stderr)
    return sorted(names)


def _say(target_name: str, line: str) -> None:
    print(f"{target_name}: {line}", flush=True)


def run(args: argparse.Namespace) -> int:
    number: int = args.pull_request
    if number < 1:
        raise BotError(f"--pull-request {number}: a pull request's number is 1 or more")
    names = args.target or target_names(Path(settings().requests_dir))
    targets = [target(name) for name in names]
    if not targets:
        print(f"no request files in {settings().requests_dir}/: no target to look in",
              file=sys.stderr)
    stopped: list[str] = []
    failed = 0
    for t in targets:
        try:
            stopped += stop_jobs_of_pull_request(
                t, number, functools.partial(_say, t.name),
                reason=f"no pull request other than #{number} waits for it")
        except AwsError as error:
            failed += 1
            print(f"promotion-bot stop-training: {t.name}: AWS failed while stopping the "
                  f"training jobs of pull request #{number}: {error.explanation}",
                  file=sys.stderr)
        except BotError as error:
            failed += 1
            print(f"promotion-bot stop-training: {t.name}: {error.message}", file=sys.stderr)
    jobs = "training job" if len(stopped) == 1 else "training jobs"
    print(f"stopped {len(stopped)} {jobs} of pull request #{number}"
          + (f" (could not look in {failed} of {len(targets)} target"
             f"{'' if len(targets) == 1 else 's'})" if failed else ""))
    return 2 if failed else 0
