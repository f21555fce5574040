"""``promotion-bot plan PATH``: what a reviewer sees, on the terminal and on the PR."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bot.errors import BotError

STATUS_CONTEXT = "promotion-bot/plan"


def repo_root(path: Path) -> Path:
    """The git work tree holding ``path``, else the current directory."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path.resolve().parent), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        return Path(out)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return Path.cwd()


def head_commit(env: dict[str, str]) -> str:
    """The PR's head commit on GitHub (not the synthetic merge commit), else HEAD."""
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and Path(event_path).is_file():
        event = json.loads(Path(event_path).read_text())
        sha = (event.get("pull_request") or {}).get("head", {}).get("sha")
        if sha:
            return str(sha)
    if env.get("GITHUB_SHA"):
        return env["GITHUB_SHA"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "0000000"


@contextlib.contextmanager
def embedded(enabled: bool, rows: int) -> Iterator[None]:
    """A local AWS (moto) with production set up, for this one run."""
    if not enabled:
        yield
        return
    from bot.local_aws import LocalAWS, bootstrap

    with LocalAWS():
        print(f"starting the embedded AWS and creating production ({rows:,} rows) ...",
              file=sys.stderr)
        bootstrap(rows=rows, progress=lambda m: print(m, file=sys.stderr))
        yield


def run(args: argparse.Namespace) -> int:
    from bot.planning import make_plan

    path = Path(args.path)
    if not path.is_file():
        raise BotError(f"{path}: no such request file")
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="promotion-plan-"))
    env = dict(os.environ)
    host = None
    pull_request = None
    if not args.no_github and not args.embedded:
        from bot.github import GitHubHost, pr_number_from_event

        host = GitHubHost.from_env()
        pull_request = pr_number_from_event(env)
    commit = head_commit(env)
    with embedded(args.embedded, args.rows):
        result = make_plan(path, repo_root(path), out_dir, commit=commit,
                           pull_request=pull_request)
    print(result.comment)
    print(f"wrote comment.md, plan.json and plots to {out_dir}", file=sys.stderr)
    if host is not None and pull_request is not None:
        host.upsert_comment(pull_request, f"plan:{result.plan['target']}", result.comment)
        failed = [g["name"] for g in result.plan["gates"] if not g["passed"]]
        host.set_status(commit, STATUS_CONTEXT, "success" if result.passed else "failure",
                        "all gates pass" if result.passed else "failed: " + ", ".join(failed))
    return 0 if result.passed else 1
