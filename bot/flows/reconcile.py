"""Reconcile one target to its desired state, resource by resource in the registry's order
(SSM → config → pipeline → endpoint → ...), with the apply record as write-ahead log.

Before a resource writes anything, its intent (the changes it is about to make, the names of
the backup or archive it is about to take) is saved in the record. A rerun after a crash
resumes the same apply from that log: its outcome lists every change of the apply, made by
this run or by the one that stopped, and it finds the backup and archive the stopped run
named (taken or not) instead of taking second ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.adapters import git
from bot.adapters.aws import artifacts
from bot.adapters.aws.lock import Lock
from bot.core import names
from bot.core.apply_record import ApplyRecord, ResourceStep, Status
from bot.core.domain import Change, LiveState, Outcome, ResourceOutcome
from bot.flows import resources
from bot.flows.preflight import Item
from bot.flows.resources.base import Context, Step, StepFailed


def _iso(moment: dt.datetime | None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat()


class Reconciliation:
    """Reconciles one target, logging every step in its apply record before it acts."""

    def __init__(self, repo: Path, item: Item, commit: str, before: str | None,
                 now: dt.datetime | None) -> None:
        t = item.target
        self.item, self.t, self.commit, self.now = item, t, commit, now
        self.previous = artifacts.get_apply_record(t, commit)
        previous = self.previous
        #: Resuming an apply of this commit that did not finish: its log carries on.
        self.resuming = previous is not None and not previous.finished
        request = item.request
        started = previous.started_at if previous is not None and self.resuming else _iso(now)
        self.record = ApplyRecord(
            target=t.name, path=item.path, commit=commit, status="in-progress",
            started_at=started, updated_at=started,
            tag=previous.tag if previous is not None and self.resuming
            else names.apply_tag(commit, started),
            approval=item.approval, before=before, request_commit=item.request_commit,
            requested_by=git.commit_author(repo, item.request_commit),
            content_sha256=request.content_sha256() if request else None,
            experiment_id=request.experiment_id if request else None,
            model_artifact=item.plan.artifact if item.plan else None,
            plan_digest=item.plan_digest,  # the plan apply used (plans/sha256/<digest>/)
            pull_request=item.pull_request, retired=request is None,
            caught_up=item.request_commit if item.missed else None,
            steps=previous.steps if previous is not None and self.resuming else (),
            changes=previous.changes if previous is not None else (),
            drift=previous.drift if previous is not None else (),
            backup_keys=previous.backup_keys if previous is not None else (),
            commented=previous is not None and previous.finished and previous.commented,
        )

    def save(self, status: Status, **fields: Any) -> None:
        self.record = replace(self.record, status=status, updated_at=_iso(self.now), **fields)
        artifacts.put_apply_record(self.t, self.commit, self.record)

    def reconcile(self, context: Context, live: LiveState, held: Lock,
                  stop: Callable[[], None] = lambda: None) -> Outcome:
        """Make the target match what ``context`` asks for; ``held`` is checked (and renewed)
        before each write, ``stop`` before each write and wait (it raises to stop the run)."""

        def guard() -> None:
            stop()
            held.check()

        def alive() -> None:
            stop()
            held.alive()

        want = resources.desired_state(context, live)
        # An interrupted run of this apply wrote the config: what still differs is our own
        # unfinished work (e.g. the endpoint), not somebody's hand.
        own = self.resuming and live.config is not None and live.config.commit == self.commit
        done: list[ResourceOutcome] = []
        for resource in resources.registry():
            kind = resource.kind
            planned = resource.changes(context, want.get(kind), live)
            earlier = self.record.step(kind) if self.resuming else None
            if own or earlier is not None:
                planned = [replace(c, drift=False) for c in planned]
            step = Step(context=context, want=want.get(kind), live=live, desired=want,
                        planned=tuple(planned),
                        details=dict(earlier.details) if earlier is not None else {},
                        tag=self.record.tag, guard=guard, alive=alive, now=self.now)
            logged = tuple(earlier.changes) if earlier is not None else ()
            if planned:
                step = replace(step, details={**step.details, **resource.intend(step)})
                logged = _merged([*logged, *planned])
                backup = step.details.get("backup_key")
                guard()  # still ours (renewed): never log over the record of a run that won
                self.record = self.record.with_step(
                    ResourceStep(kind, "intent", logged, step.details))
                self.save("in-progress", backup_keys=self.record.backup_keys + (
                    (backup,) if backup and backup not in self.record.backup_keys else ()))
            try:
                result = resource.apply(step)
            except StepFailed as failed:
                # What the resource left is recorded before the apply fails with why.
                self.record = self.record.with_step(ResourceStep(
                    kind, "done", logged, {**step.details, **failed.details}))
                raise
            details = {**step.details, **result} if logged else result
            if logged or result:
                self.record = self.record.with_step(ResourceStep(kind, "done", logged, details))
            facts, lines = resource.describe(details)
            done.append(ResourceOutcome(kind, logged, details, facts, lines))
        return Outcome(
            target=self.t.name, path=self.item.path, commit=self.commit,
            content_sha256=self.record.content_sha256, resources=tuple(done),
            approval=self.item.approval, pull_request=self.item.pull_request,
            retired=self.item.request is None,
            caught_up=self.item.request_commit if self.item.missed else None,
        )

    def finish(self, outcome: Outcome, commented: bool) -> None:
        """Record the outcome unless a finished record already says all of it."""
        previous = self.previous
        if outcome.noop and previous is not None and previous.finished and (
                commented == self.record.commented):
            return
        # The history of this commit's applies: earlier ones', then this one's (a record of
        # format 1 may hold some of this apply's changes already).
        base = list(self.record.changes)
        changes = base + [c for c in outcome.changes if c not in base]
        drift = list(self.record.drift)
        drift += [c for c in outcome.drift if c not in drift]
        self.save("complete", commented=commented, changes=tuple(changes),
                  drift=tuple(drift), finished_at=_iso(self.now), error=None)


def _merged(changes: list[Change]) -> tuple[Change, ...]:
    """One change per thing changed, in order: a thing changed twice (by the run that stopped
    and by this one) keeps its first ``before`` and its last ``after``."""
    merged: dict[tuple[str, str], Change] = {}
    for change in changes:
        first = merged.get((change.target, change.key))
        merged[(change.target, change.key)] = change if first is None else replace(
            change, before=first.before, drift=first.drift or change.drift)
    return tuple(merged.values())
