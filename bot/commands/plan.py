"""``promotion-bot plan PATH``: what a reviewer sees, on the terminal and on the PR."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bot.adapters import git
from bot.adapters.github import GitHubHost
from bot.adapters.request_files import load_request, load_target_request
from bot.adapters.workflow_event import pr_head_from_event, pr_number_from_event
from bot.core.rollout_rules import Soak
from bot.errors import BotError, InvalidRequest
from bot.flows.plan import make_plan
from bot.flows.rollout_history import current_soak, locate, rollout_problems
from bot.flows.sagemaker_training import Superseded
from bot.report import markdown as md

STATUS_CONTEXT = "promotion-bot/plan"


def repo_root(path: Path) -> Path:
    """The git work tree holding ``path``, else the current directory."""
    try:
        return git.toplevel(path.resolve().parent)
    except BotError:
        return Path.cwd()


def head_commit(env: dict[str, str], repo: Path | None = None) -> str:
    """The PR's head commit on GitHub (not the synthetic merge commit), else the HEAD of
    ``repo`` (the request's repository), else a placeholder no apply will look for."""
    sha = pr_head_from_event(env) or env.get("GITHUB_SHA")
    if sha:
        return sha
    try:
        return git.rev_parse(repo or Path.cwd(), "HEAD")
    except BotError:
        return "0000000"


def superseded(host: GitHubHost, pull_request: int, commit: str) -> str | None:
    """Why a plan of ``commit`` is not wanted: the pull request's head is another commit now
    (a re-run of an older push's plan run); None when ``commit`` is its head."""
    head = host.pull_head(pull_request)
    if head == commit:
        return None
    return (f"pull request #{pull_request}'s head is {head[:12]} now, not {commit[:12]}: this "
            "run is for an older push, so nothing was planned (the plan of the head is what "
            "merging applies)")


@contextlib.contextmanager
def embedded(enabled: bool, rows: int) -> Iterator[None]:
    """A local AWS (moto) with production set up, for this one run."""
    if not enabled:
        yield
        return
    # Only here: production never imports the stand-ins (they need moto).
    from bot.local.aws_server import LocalAWS
    from bot.local.bootstrap import bootstrap

    with LocalAWS():
        print(f"starting the embedded AWS and creating production ({rows:,} rows) ...",
              file=sys.stderr)
        bootstrap(rows=rows, progress=lambda m: print(m, file=sys.stderr))
        yield


class PlanProgress:
    """Progress lines on stderr; on a pull request, a plan that runs long (a training job)
    also shows its latest line in the PR comment and the pending status, at most once a minute.

    The finished plan (or its failure) replaces that comment, as on every run.
    """

    FIRST_AFTER = 60.0
    EVERY = 60.0

    def __init__(self, host: GitHubHost | None, pull_request: int | None, commit: str,
                 target: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self.pull_request, self.commit, self.target = (host, pull_request, commit,
                                                                  target)
        self.clock = clock
        self.started = clock()
        self.shown: float | None = None

    def __call__(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        if self.host is None or self.pull_request is None:
            return
        now = self.clock()
        if now - self.started < self.FIRST_AFTER or (
                self.shown is not None and now - self.shown < self.EVERY):
            return
        self.shown = now
        body = (f"## ⏳ Promotion plan — `{self.target}`: in progress\n\n> {message}\n\n"
                f"<sub>planning for {(now - self.started) / 60:.0f} min; this comment is "
                "replaced by the plan when it is done.</sub>\n")
        try:
            self.host.upsert_comment(self.pull_request, f"plan:{self.target}", body)
            self.host.set_status(self.commit, STATUS_CONTEXT, "pending", message[:140])
        except Exception as error:  # progress is best effort: the plan goes on
            print(f"(could not show progress on the pull request: {error})", file=sys.stderr)


def report_failure(host: GitHubHost, pull_request: int, commit: str, target: str,
                   error: BotError) -> None:
    """Bad input is shown where the author looks: in the plan comment and the status.

    The status is set even when the comment cannot be written, so it never stays pending.
    """
    body = (
        f"## ❌ Promotion plan — {md.code(target)}: cannot plan this request\n\n"
        f"{md.block(error.message)}\n\nFix the request and push again; nothing was changed.\n"
    )
    marker = re.sub(r"[^a-z0-9-]|-(?=-)", "_", target.lower()) or "_"  # a bad name too
    first = error.message.splitlines()[0] if error.message else "invalid request"
    try:
        host.upsert_comment(pull_request, f"plan:{marker}", body)
    finally:
        host.set_status(commit, STATUS_CONTEXT, "error", first)


def final_status(host: GitHubHost, commit: str, state: str, description: str) -> None:
    """The plan's last status; if GitHub refuses it, one more try as ``error`` (so that a
    status does not stay pending when only that write failed), then the refusal."""
    try:
        host.set_status(commit, STATUS_CONTEXT, state, description)
    except BotError as error:
        with contextlib.suppress(BotError):
            host.set_status(commit, STATUS_CONTEXT, "error", description)
        raise BotError(f"{error.message}; the status {STATUS_CONTEXT} of {commit[:12]} may "
                       "still say pending: rerun the plan") from None


def check_request(path: Path, base: str | None) -> Soak | None:
    """Every check that needs neither data nor AWS, the ones ``validate`` makes, before the
    plan starts anything (the embedded AWS, a training): the request's format, its file name
    as a target's, and the rollout rules. Raises ``InvalidRequest`` (exit 2). Returns how long
    the challenger's current step has soaked on the base (None: unknown or none serves)."""
    load_target_request(path, display_path=_shown(path))
    return check_rollout(path, base)


def _shown(path: Path) -> str:
    """``path`` as the plan names it: relative to its repository's root when it is in one."""
    try:
        return path.resolve().relative_to(repo_root(path).resolve()).as_posix()
    except ValueError:
        return str(path)


def check_rollout(path: Path, base: str | None) -> Soak | None:
    """Refuse a rollout step the rules forbid before anything is trained (exit 2); return the
    current step's soak for the comment.

    ``base`` is the revision main is at; on GitHub without it, ``origin/$GITHUB_BASE_REF``
    if that was fetched (else the check is skipped, with a note).
    """
    if base is None:
        base_ref = os.environ.get("GITHUB_BASE_REF")
        if not base_ref:
            return None
        try:
            root, relative = locate(path)
            base = git.resolve(root, f"origin/{base_ref}")
        except BotError:
            base = None
        if base is None:
            print(f"promotion-bot plan: origin/{base_ref} cannot be read here, so the rollout "
                  "steps were not checked (pass --base REV)", file=sys.stderr)
            return None
    else:
        root, relative = locate(path)
    request, lines = load_request(path, display_path=relative)
    problems = rollout_problems(root, base, relative, request, lines, datetime.now(UTC))
    if problems:
        raise InvalidRequest(problems)
    return current_soak(root, base, relative, request)


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.is_file():
        raise BotError(f"{path}: no such request file")
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="promotion-plan-"))
    env = dict(os.environ)
    host = None
    pull_request = None
    if not args.no_github and not args.embedded:
        host = GitHubHost.from_env()
        pull_request = args.pull_request or pr_number_from_event(env)
    commit = args.head or head_commit(env, repo_root(path))
    if not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise BotError(f"--head {commit!r}: not a commit id (7 to 64 lower-case hex digits); "
                       "the plan is stored under its pull request's head commit")
    if host is not None and pull_request is not None:
        stale = superseded(host, pull_request, commit)
        if stale is not None:  # no comment, no status: they belong to the head's own run
            print(f"promotion-bot plan: {stale}", file=sys.stderr)
            return 0
        host.set_status(commit, STATUS_CONTEXT, "pending", "planning: training and evaluating")
    try:
        soak = check_request(path, args.base)
        with embedded(args.embedded, args.rows):
            result = make_plan(path, repo_root(path), out_dir, commit=commit,
                               pull_request=pull_request, soak=soak,
                               progress=PlanProgress(host, pull_request, commit, path.stem))
    except BotError as error:
        if host is not None and pull_request is not None:
            with contextlib.suppress(BotError):  # the plan's own error is the one to show
                if isinstance(error, Superseded):  # the newer plan owns the comment
                    host.set_status(commit, STATUS_CONTEXT, "error", error.message[:140])
                else:
                    report_failure(host, pull_request, commit, path.stem, error)
        raise
    except BaseException:
        if host is not None and pull_request is not None:  # never leave the status pending
            with contextlib.suppress(BotError):
                host.set_status(commit, STATUS_CONTEXT, "error",
                                "plan failed; see the workflow log")
        raise
    print(result.comment)
    print(f"wrote comment.md, plan.json and plots to {out_dir}", file=sys.stderr)
    if host is not None and pull_request is not None:
        try:
            host.upsert_comment(pull_request, f"plan:{result.plan.target}", result.comment)
        except BotError as error:
            # Reviewers must see the plan before merging: not a pass without its comment.
            final_status(host, commit, "error", "the plan comment could not be posted; rerun "
                                                "the plan")
            raise BotError(f"{error.message}; the plan comment was not posted (the plan is in "
                           f"{out_dir}) and the status {STATUS_CONTEXT} says error") from None
        failed = [g.name for g in result.plan.gates if not g.passed]
        final_status(host, commit, "success" if result.passed else "failure",
                     "all gates pass" if result.passed else "failed: " + ", ".join(failed))
    return 0 if result.passed else 1
