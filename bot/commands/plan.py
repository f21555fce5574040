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
from bot.adapters.request_files import history, load_target_request
from bot.adapters.workflow_event import pr_head_from_event, pr_number_from_event
from bot.core.request_history import previous_state
from bot.core.rollout_rules import Soak, check_rollout_step, soak_of
from bot.errors import BotError, InvalidRequest
from bot.flows.plan import PlanSource, make_plan
from bot.flows.sagemaker_training import Superseded
from bot.report import markdown as md

STATUS_CONTEXT = "promotion-bot/plan"


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


def read_checkout(path: Path, commit: str | None, base: str | None) -> git.Checkout | None:
    """The request's git work tree, read once: HEAD, ``base`` and what ``commit`` reverts;
    None outside a work tree."""
    try:
        return git.checkout_of(path, commit, base)
    except BotError:
        return None


def base_revision(given: str | None, env: dict[str, str]) -> str | None:
    """The revision main is at: ``--base``, else on GitHub ``origin/$GITHUB_BASE_REF``."""
    base_ref = env.get("GITHUB_BASE_REF")
    return given or (f"origin/{base_ref}" if base_ref else None)


def prepare(path: Path, checkout: git.Checkout | None, commit: str, base: str | None,
            explicit: bool) -> tuple[PlanSource, Soak | None]:
    """Every check that needs neither data nor AWS, the ones ``validate`` makes, before the
    plan starts anything (the embedded AWS, a training): the request's format, its file name
    as a target's, and the rollout rules against ``base``, the revision main is at (--base,
    ``explicit``; on GitHub ``origin/$GITHUB_BASE_REF`` if it was fetched, else the check is
    skipped with a note). Raises ``InvalidRequest`` (exit 2).

    Returns what the plan reads (the request, and its history read once: on the base, else
    on HEAD) and how long the challenger's current step has soaked on the base (None:
    unknown, or none serves)."""
    shown = checkout.path if checkout is not None else str(path)
    request, lines = load_target_request(path, display_path=shown)
    if base is not None and (checkout is None or checkout.base is None):
        if explicit:
            raise BotError(f"{path}: not in a git repository, so its rollout history cannot "
                           "be read" if checkout is None else
                           f"--base: {base!r} is not a commit in {checkout.root}")
        print(f"promotion-bot plan: {base} cannot be read here, so the rollout steps were not "
              "checked (pass --base REV)", file=sys.stderr)
    if checkout is None:
        return PlanSource(request, shown, Path.cwd(), commit), None
    rev = checkout.base or checkout.head
    versions = history(checkout.root, rev, checkout.path) if rev is not None else ()
    source = PlanSource(request, shown, checkout.root, commit, versions, checkout.reverts)
    if checkout.base is None:
        return source, None
    previous, since = previous_state(versions)
    problems = check_rollout_step(shown, request, lines, previous, since, datetime.now(UTC))
    if problems:
        raise InvalidRequest(problems)
    return source, soak_of(previous, request, since)


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
    base = base_revision(args.base, env)
    # The PR's head on GitHub (not the synthetic merge commit), else HEAD, else a placeholder
    # no apply will look for.
    asked = args.head or pr_head_from_event(env) or env.get("GITHUB_SHA")
    checkout = read_checkout(path, asked, base)
    commit = asked or (checkout.head if checkout is not None else None) or "0000000"
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
        source, soak = prepare(path, checkout, commit, base, explicit=args.base is not None)
        with embedded(args.embedded, args.rows):
            result = make_plan(source, out_dir, pull_request=pull_request, soak=soak,
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
