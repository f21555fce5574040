"""Apply on merge: reconcile AWS to the request files changed in a git range, and catch up.

Every request changed in the range is checked first (a passing stored plan for its exact
content, an approval by the pull request that last changed it), so a refusal changes
nothing. Then each target is reconciled under its lock in a fixed order — SSM, production
config, pipeline, endpoint — and every step first looks at what is live, so a second run
changes nothing and a run after a failure finishes the job.

Runs can be skipped: GitHub keeps one pending run per concurrency group, so of three quick
merges the middle one's run is cancelled before it starts. So apply also takes every other
request file at the range's end whose content production does not serve yet ("missed") and
applies it too. A missed file that cannot be applied (no passing plan, no approval, its
lock held) is skipped with a warning: it never blocks the files of the range.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.adapters import git
from bot.core.desired_state import Desired, desired
from bot.core.domain import Outcome
from bot.errors import LockHeld, NotPlanned
from bot.flows.preflight import NOTHING, approve, missed_items, prepare, requests_at
from bot.flows.reconcile import Reconciliation, retired
from bot.report.apply_outcome import comment, failure_comment, missed_line
from bot.settings import settings

if TYPE_CHECKING:
    from bot.adapters.github import GitHubHost

STATUS_CONTEXT = "promotion-bot/apply"


def _warn(message: str) -> None:
    print(f"promotion-bot apply: warning: {message}", file=sys.stderr, flush=True)


def apply(
    repo: Path, before: str | None, after: str, host: GitHubHost | None,
    now: dt.datetime | None = None, report: Callable[[Outcome], None] | None = None,
    warn: Callable[[str], None] = _warn,
) -> list[Outcome]:
    """Reconcile AWS to every request file changed in ``before..after``, in path order, then to
    every other request file at ``after`` that production does not serve yet (missed).

    A file of the range that is not planned or not approved refuses the whole run before
    anything changes; a missed one is skipped with a warning through ``warn``.
    """
    from bot.adapters.aws import lock
    from bot.adapters.aws.live import read_live
    from bot.core.desired_state import execution_name
    from bot.flows.rollout_history import retrain_commit

    commit = git.rev_parse(repo, after)
    found = git.changed_requests(repo, before, commit, settings().requests_dir)
    items = [prepare(repo, commit, path, status, now) for path, status in found]
    names = [i.target.name for i in items if i.request is not None]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise NotPlanned(f"more than one request file for target(s) {', '.join(twice)} in "
                         f"{commit[:12]}; keep one file per target; {NOTHING}")
    at_commit = requests_at(repo, commit, warn)
    # x.yml renamed to x.yaml: the target lives on in the other file, nothing is retired.
    alive = {PurePosixPath(p).stem for p in at_commit}
    items = [i for i in items if i.request is not None or i.target.name not in alive]
    pulls: dict[str, int | None] = {}
    # NotApproved: nothing changed
    items = [approve(repo, i, host, pulls, commit) for i in items]
    items += missed_items(repo, commit, at_commit, {p for p, _ in found}, set(names), host, pulls,
                     warn, now)
    if not items:
        return []
    if host is not None:
        ranged = ", ".join(i.target.name for i in items if not i.missed)
        missed = ", ".join(i.target.name for i in items if i.missed)
        host.set_status(commit, STATUS_CONTEXT, "pending", "; ".join(
            [*([f"applying {ranged}"] if ranged else []),
             *([f"catching up {missed} (changes no run applied)"] if missed else [])]))
    owner = f"{lock.default_owner()} applying {commit[:12]}"
    outcomes: list[Outcome] = []
    skipped: list[str] = []
    for item in items:
        t, pull_request = item.target, item.pull_request
        run = Reconciliation(repo, item, commit, before, now)
        locked = False
        try:
            with lock.acquire(t, owner) as held:
                locked = True
                request, plan = item.request, item.plan
                if request is not None and plan is not None:
                    retrain = retrain_commit(repo, commit, item.path, request) or commit
                    name = (execution_name(t, retrain, request)
                            if request.rollout.pipeline else None)
                    live = read_live(t, name)
                    want: Desired | None = desired(t, request, plan, live.config, commit,
                                                   pull_request, item.approval,
                                                   retrain_commit=retrain)
                else:
                    live = read_live(t, None)
                    want = retired(t, live)
                outcome = run.reconcile(want, live, held)
                commented = run.record["commented"]
                if host is not None and pull_request is not None and (
                        not outcome.noop or not commented):
                    host.upsert_comment(pull_request, f"apply:{t.name}", comment(outcome))
                    commented = True
                run.finish(outcome, commented)
        except LockHeld as error:
            if not item.missed or locked:
                _failed(run, host, commit, pull_request, error)
                raise
            # Nothing changed yet: someone else is applying this target; the next run catches
            # up again.
            warn(f"{missed_line(item.path, item.request_commit).removesuffix(': applying it now')}"
                 f", and cannot be applied now: {error.message}; skipped {item.path}")
            skipped.append(t.name)
            continue
        except BaseException as error:
            _failed(run, host, commit, pull_request, error)
            raise
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    if host is not None:
        done = [o for o in outcomes if not o.noop]
        host.set_status(commit, STATUS_CONTEXT, "success", (
            f"applied {', '.join(o.target for o in done)}" if done
            else "no changes: production already matches")
            + (f"; skipped {', '.join(skipped)} (locked)" if skipped else ""))
    return outcomes


def _failed(run: Reconciliation, host: GitHubHost | None, commit: str, pull_request: int | None,
            error: BaseException) -> None:
    """Say where apply stopped; best effort, the error that stopped it matters more."""
    message = f"{type(error).__name__}: {error}"
    if not isinstance(error, LockHeld):  # the holder's record is the holder's to write
        with contextlib.suppress(Exception):
            run.save("failed", error=message)
    if host is None:
        return
    with contextlib.suppress(Exception):
        host.set_status(commit, STATUS_CONTEXT, "failure",
                        f"{run.t.name}: {message}; rerun apply to finish")
    if pull_request is not None:
        with contextlib.suppress(Exception):
            host.upsert_comment(pull_request, f"apply:{run.t.name}", failure_comment(
                run.t.name, message, run.record["backup_keys"]))


