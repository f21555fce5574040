"""Apply on merge: reconcile AWS to the request files changed in a git range, and catch up.

Every request changed in the range is checked first (a passing signed plan of the reviewed
pull request head for its exact content, an approval by the pull request that last changed
it, no step up while an alarm guarding its challenger fires), so a refusal changes nothing.
Then each target is reconciled under its lock in a fixed order — SSM, production config,
pipeline, alarms, endpoint, ... — and every step first looks at what is live, so a second
run changes nothing and a run after a failure finishes the job.

Runs can be skipped: GitHub keeps one pending run per concurrency group, so of three quick
merges the middle one's run is cancelled before it starts. So apply also takes every other
request file at the range's end whose content production does not serve yet ("missed") and
applies it too. A missed file that cannot be applied (no passing plan, no approval, its
lock held) is skipped with a warning: it never blocks the files of the range.

GitHub is told, never obeyed: a commit status or comment that cannot be written is a
warning (and said in the outcome), never a reason to stop or fail an apply that changed
production. A run that loses the lock to another run of the same commit leaves the status
to that run, so the last status of a commit is always the winner's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import TYPE_CHECKING

from bot.adapters import git
from bot.adapters.aws import artifacts, lock
from bot.adapters.aws.clients import unreachable
from bot.core.domain import Outcome
from bot.errors import BotError, LockHeld, LockLost, NotPlanned, Stopped
from bot.flows import resources
from bot.flows.preflight import NOTHING, approve, missed_items, prepare, requests_at
from bot.flows.reconcile import Reconciliation
from bot.flows.resources.base import Context
from bot.flows.rollout_history import retrain_commit
from bot.report.apply_outcome import comment, failure_comment, missed_line, status_note
from bot.settings import settings

if TYPE_CHECKING:
    from bot.adapters.github import GitHubHost

STATUS_CONTEXT = "promotion-bot/apply"


def _warn(message: str) -> None:
    print(f"promotion-bot apply: warning: {message}", file=sys.stderr, flush=True)


class StopRequest:
    """Whether this run was asked to stop (SIGTERM); checked before every AWS write and wait,
    so the run ends after its current call: the lock is released, the record says where."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def check(self) -> None:
        if self.reason is not None:
            raise Stopped(f"{self.reason}: stopped before its next write and released the "
                          "lock; production may be partly updated; rerun apply to finish")


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[StopRequest]:
    """SIGTERM (how a cancelled runner ends a job) turned into an orderly stop for the block;
    the previous handler comes back afterwards. Outside the main thread: no handler."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.reason = "SIGTERM received (the job was cancelled)"

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def apply(
    repo: Path, before: str | None, after: str, host: GitHubHost | None,
    now: dt.datetime | None = None, report: Callable[[Outcome], None] | None = None,
    warn: Callable[[str], None] = _warn, stop: StopRequest | None = None,
) -> list[Outcome]:
    """Reconcile AWS to every request file changed in ``before..after``, in path order, then to
    every other request file at ``after`` that production does not serve yet (missed).

    A file of the range that is not planned or not approved refuses the whole run before
    anything changes; a missed one is skipped with a warning through ``warn``.
    """
    commit = git.rev_parse(repo, after)
    found = git.changed_requests(repo, before, commit, settings().requests_dir)
    pulls: dict[str, int | None] = {}
    items = [prepare(repo, commit, path, status, now, host, pulls) for path, status in found]
    names = [i.target.name for i in items if i.request is not None]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise NotPlanned(f"more than one request file for target(s) {', '.join(twice)} in "
                         f"{commit[:12]}; keep one file per target; {NOTHING}")
    at_commit = requests_at(repo, commit, warn)
    # x.yml renamed to x.yaml: the target lives on in the other file, nothing is retired.
    alive = {PurePosixPath(p).stem for p in at_commit}
    items = [i for i in items if i.request is not None or i.target.name not in alive]
    # NotApproved: nothing changed
    items = [approve(repo, i, host, pulls, commit) for i in items]
    items += missed_items(repo, commit, at_commit, {p for p, _ in found}, set(names), host, pulls,
                     warn, now)
    if not items:
        return []
    ranged = ", ".join(i.target.name for i in items if not i.missed)
    missed = ", ".join(i.target.name for i in items if i.missed)
    statuses = _Statuses(host, commit, warn)
    pending = "; ".join([*([f"applying {ranged}"] if ranged else []),
                         *([f"catching up {missed} (changes no run applied)"] if missed else [])])
    owner = f"{lock.default_owner()} applying {commit[:12]}"
    outcomes: list[Outcome] = []
    skipped: list[str] = []
    commented: list[tuple[int, str, Outcome]] = []
    stopping = stop or StopRequest()
    for item in items:
        t, pull_request = item.target, item.pull_request
        stopping.check()
        run = Reconciliation(repo, item, commit, before, now)
        locked = False
        try:
            with lock.acquire(t, owner, commit=commit) as held:
                locked = True
                statuses.pending(pending)  # once this run holds a lock: a loser writes nothing
                request, plan = item.request, item.plan
                if request is not None and plan is not None:
                    context = Context(t, request, plan, commit, pull_request, item.approval,
                                      retrain_commit(repo, commit, item.path, request) or commit,
                                      reverts=_reverts(repo, item.path, item.request_commit))
                else:  # the request file was deleted: retire the challenger
                    context = Context(t, None, None, commit, pull_request, item.approval,
                                      reverts=_reverts(repo, item.path, item.request_commit))
                outcome = run.reconcile(context, resources.read_live(context), held,
                                        stopping.check)
                said = run.record.commented
                if host is not None and pull_request is not None and (
                        not outcome.noop or not said):
                    said = _comment(host, pull_request, t.name, comment(outcome), warn)
                    if said:
                        commented.append((pull_request, t.name, outcome))
                run.finish(outcome, said)
        except LockHeld as error:
            if not item.missed or locked:
                _failed(run, statuses, commit, pull_request, error)
                raise
            # Nothing changed yet: someone else is applying this target; the next run catches
            # up again.
            warn(f"{missed_line(item.path, item.request_commit).removesuffix(': applying it now')}"
                 f", and cannot be applied now: {error.message}; skipped {item.path}")
            skipped.append(t.name)
            continue
        except BaseException as error:
            _failed(run, statuses, commit, pull_request, error)
            raise
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    done = [o for o in outcomes if not o.noop]
    set_ = statuses.set("success", (
        f"applied {', '.join(o.target for o in done)}" if done
        else "no changes: production already matches")
        + (f"; skipped {', '.join(skipped)} (locked)" if skipped else ""))
    if host is not None and not set_ and statuses.failed:
        # Say it where people look: the outcome comments of this run get the note.
        for number, name, outcome in commented:
            _comment(host, number, name, comment(outcome) + status_note(statuses.failed), warn)
    return outcomes


def _reverts(repo: Path, path: str, sha: str) -> str | None:
    """What the change ``sha`` of ``path`` reverts ("<commit[:12]> <subject>"), from git
    revert's message; None when it is no revert."""
    found = git.log(repo, path, rev=sha, max_count=1)
    reverted = found[0].reverts if found else None
    if reverted is None:
        return None
    original = git.log(repo, ".", rev=reverted, max_count=1) if git.resolve(
        repo, reverted) else []
    return f"{reverted[:12]} {original[0].subject}" if original else reverted[:12]


class _Statuses:
    """apply's commit statuses, best effort: GitHub failing never stops or fails an apply.

    A status that cannot be written is a warning; ``failed`` keeps why, for the outcome.
    """

    def __init__(self, host: GitHubHost | None, commit: str, warn: Callable[[str], None]
                 ) -> None:
        self.host, self.commit, self.warn = host, commit, warn
        self.failed: str | None = None
        self._pending = False

    def pending(self, description: str) -> None:
        if not self._pending:
            self._pending = True
            self.set("pending", description)

    def set(self, state: str, description: str) -> bool:
        if self.host is None:
            return True
        try:
            self.host.set_status(self.commit, STATUS_CONTEXT, state, description)
        except BotError as error:
            self.failed = error.message
            self.warn(f"could not set the commit status {STATUS_CONTEXT} of "
                      f"{self.commit[:12]} to {state}: {error.message}")
            return False
        return True


def _comment(host: GitHubHost, pull_request: int, name: str, body: str,
             warn: Callable[[str], None]) -> bool:
    """Post the outcome on the pull request; a warning (and a later retry) when GitHub fails."""
    try:
        host.upsert_comment(pull_request, f"apply:{name}", body)
    except BotError as error:
        warn(f"could not comment the outcome of {name} on pull request #{pull_request}: "
             f"{error.message}; the next apply run comments it")
        return False
    return True


def _finished_by_another(run: Reconciliation) -> bool:
    """Whether another run completed this apply since this run started (it took the lock)."""
    try:
        record = artifacts.get_apply_record(run.t, run.commit)
    except Exception:  # not knowing is not finished: this run says it failed
        return False
    return record is not None and record.finished and (
        run.previous is None or record.updated_at != run.previous.updated_at)


def _failed(run: Reconciliation, statuses: _Statuses, commit: str, pull_request: int | None,
            error: BaseException) -> None:
    """Say where apply stopped; best effort, the error that stopped it matters more.

    A run that lost the lock to a run of the same commit says nothing on GitHub: the holder
    writes that commit's status and comment. When AWS cannot be reached, the apply record
    is left as it is (writing it would wait for the same timeout).
    """
    message = f"{type(error).__name__}: {error}"
    if not isinstance(error, LockHeld) and not unreachable(error):
        # The holder's record is the holder's to write.
        with contextlib.suppress(Exception):
            run.save("failed", error=message)
    if isinstance(error, LockHeld) and (error.commit == commit or (
            isinstance(error, LockLost) and _finished_by_another(run))):
        return
    host = statuses.host
    if host is None:
        return
    statuses.set("failure", f"{run.t.name}: {message}; rerun apply to finish")
    if pull_request is not None:
        _comment(host, pull_request, run.t.name, failure_comment(
            run.t.name, message, list(run.record.backup_keys)), statuses.warn)
