"""Reconcile one target to its desired state, in order SSM → config → pipeline → endpoint,
keeping the apply record up to date after every step so that a rerun resumes.

A rerun after a crash resumes the same apply: it keeps the SSM backup taken before that
apply's first write (never a backup of the half-written state it finds), and its outcome
lists every change of the apply, made by this run or by the one that stopped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.adapters import git
from bot.core.changes import changes as planned_changes
from bot.core.changes import ssm_changes
from bot.core.desired_state import Desired
from bot.core.domain import Approval, Change, EndpointSpec, LiveState, Outcome, VariantSpec
from bot.flows.preflight import Item
from bot.settings import Target

if TYPE_CHECKING:
    from bot.adapters.aws.lock import Lock


def retired(t: Target, live: LiveState) -> Desired | None:
    """A deleted request retires the challenger and leaves the champion and SSM as they are."""
    config = live.config
    if config is None:
        return None
    endpoint = live.endpoint
    if config.champion is not None and endpoint is not None:
        served = endpoint.variant("champion")
        endpoint = EndpointSpec(t.endpoint_name, (VariantSpec(
            "champion", config.champion.model_artifact, 100,
            served.instance_type if served else "ml.m5.xlarge",
            served.instance_count if served else 1),))
    return Desired(
        ssm=dict(live.ssm),
        config=config.model_copy(update={"challenger_traffic_percent": None}),
        pipeline_execution=None,
        endpoint=endpoint if config.champion is not None else None,
    )


def _iso(moment: dt.datetime | None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat()


class Reconciliation:
    """Reconciles one target, keeping its apply record up to date after every step."""

    def __init__(self, repo: Path, item: Item, commit: str, before: str | None,
                 now: dt.datetime | None) -> None:
        from bot.adapters.aws import artifacts

        pull_request, approval = item.pull_request, item.approval
        self.item, self.t, self.commit, self.now = item, item.target, commit, now
        self.previous = artifacts.get_apply_record(self.t, commit) or {}
        carried = self.previous.get("status") != "complete"
        request = item.request
        self.record: dict[str, Any] = {
            "target": self.t.name,
            "path": item.path,
            "commit": commit,
            "before": before,
            "request_commit": item.request_commit,
            "requested_by": git.commit_author(repo, item.request_commit),
            "content_sha256": request.content_sha256() if request else None,
            "experiment_id": request.experiment_id if request else None,
            "model_artifact": item.plan.artifact if item.plan else None,
            "plan_digest": item.plan_digest,  # the plan apply used (plans/sha256/<digest>/)
            "pull_request": pull_request,
            "approval": {"approvers": list(approval.approvers), "source": approval.source},
            "retired": request is None,
            "caught_up": item.request_commit if item.missed else None,
            "started_at": self.previous.get("started_at") or _iso(now),
            "changes": list(self.previous.get("changes", [])),
            "drift": list(self.previous.get("drift", [])),
            "backup_keys": list(self.previous.get("backup_keys", [])),
            "commented": bool(self.previous.get("commented")) and not carried,
        }
        # Resuming an unfinished apply: the backup its first write was made after, and the
        # changes it made before it stopped.
        self.carried_backup: str | None = None
        self.carried_changes: list[Change] = []
        if carried and self.previous:
            self.carried_backup = self.previous.get("resumable_backup") or (
                self.record["backup_keys"][-1] if self.record["backup_keys"] else None)
            self.carried_changes = [Change(**c) for c in self.previous.get("run_changes", [])]
            self.record["resumable_backup"] = self.carried_backup
        self.record["run_changes"] = [c.to_json() for c in self.carried_changes]
        self.applied: list[Change] = []

    def save(self, status: str, **fields: Any) -> None:
        from bot.adapters.aws import artifacts

        self.record.update(fields, status=status, updated_at=_iso(self.now))
        artifacts.put_apply_record(self.t, self.commit, self.record)

    def did(self, found: list[Change]) -> None:
        self.applied += found
        self.record["changes"] += [c.to_json() for c in found]
        self.record["drift"] += [c.to_json() for c in found if c.drift]
        self.record["run_changes"] += [c.to_json() for c in found]

    def reconcile(self, want: Desired | None, live: LiveState, held: Lock) -> Outcome:
        """Make the target match ``want``; ``held`` is checked (and renewed) before each write."""
        from bot.adapters.aws import config_store, endpoint, pipeline, ssm

        t = self.t
        planned = list(planned_changes(want, live, t.ssm_prefix, t.config_uri)) if want else []
        resuming = bool(self.previous) and self.previous.get("status") != "complete"
        if resuming and live.config is not None and live.config.commit == self.commit:
            # An interrupted run of this apply wrote the config: what still differs is our
            # own unfinished work (e.g. the endpoint), not somebody's hand.
            planned = [replace(c, drift=False) for c in planned]

        def of(kind: str) -> list[Change]:
            return [c for c in planned if c.target == kind]

        backup_key = None
        if want is not None and want.ssm != live.ssm:
            held.check()
            if self.carried_backup is not None:
                # The interrupted run backed up the values before its first write; what is
                # live now is half written and must not become "the backup".
                backup_key = self.carried_backup
                before = ssm.load_backup(t, backup_key)
            else:
                backup_key = ssm.backup(t, live.ssm, self.now)
                before = live.ssm
                self.save("in-progress", backup_keys=[*self.record["backup_keys"], backup_key],
                          resumable_backup=backup_key)
            ssm.write(t, want.ssm)
            found = ssm_changes(want.ssm, replace(live, ssm=before), t.ssm_prefix)
            if resuming and live.config is not None and live.config.commit == self.commit:
                found = [replace(c, drift=False) for c in found]
            self.did(found)
            self.save("in-progress")

        written = config_store.write(t, want.config, self.now, before_write=held.check) \
            if want is not None else None
        if written is not None and written.changed:
            self.did(of("s3-config"))
            self.save("in-progress", config_version=written.version,
                      config_archive=written.archive_uri)

        arn = status = None
        if want is not None and want.pipeline_execution:
            arn, started = pipeline.start(t, want.pipeline_execution, self._payload(want),
                                          before_write=held.check)
            status = str(pipeline.status(arn)["status"])
            if started:
                self.did(of("pipeline") or [
                    Change("pipeline", want.pipeline_execution, None, "start execution")])
                self.save("in-progress", execution_arn=arn, execution_status=status)

        endpoint_name: str | None = None
        variants: tuple[VariantSpec, ...] = ()
        actions: tuple[str, ...] = ()
        if want is not None and want.endpoint is not None:
            result = endpoint.reconcile(t, want.endpoint, guard=held.check, alive=held.alive)
            endpoint_name, variants, actions = result.endpoint_name, result.variants, \
                result.actions
            if actions:
                self.did(of("endpoint") or [Change("endpoint", endpoint_name, None, "reconciled")])
        elif live.endpoint is not None:
            endpoint_name, variants = live.endpoint.endpoint_name, live.endpoint.variants

        done = _merged([*self.carried_changes, *self.applied])
        return Outcome(
            target=t.name, path=self.item.path, commit=self.commit,
            content_sha256=self.record["content_sha256"], changes=done,
            drift=tuple(c for c in done if c.drift),
            backup_key=backup_key or self.carried_backup,
            config_version=written.version if written else None,
            config_archive=written.archive_uri if written else None,
            execution_arn=arn, execution_status=status, endpoint=endpoint_name,
            variants=tuple(variants), endpoint_actions=tuple(actions),
            noop=not done,
            approval=Approval(tuple(self.record["approval"]["approvers"]),
                              self.record["approval"]["source"]),
            pull_request=self.record["pull_request"], retired=self.item.request is None,
            caught_up=self.item.request_commit if self.item.missed else None,
        )

    def _payload(self, want: Desired) -> dict[str, Any]:
        return {
            "target": self.t.name,
            "experiment_id": want.config.experiment_id,
            "commit": self.commit,
            "content_sha256": want.config.content_sha256,
            "hyperparameters": want.ssm,
            "hyperparameters_path": self.t.ssm_prefix,
            "config_uri": self.t.config_uri,
            "model_artifact": want.config.model_artifact,
        }

    def finish(self, outcome: Outcome, commented: bool) -> None:
        """Record the outcome unless a finished record already says all of it."""
        if outcome.noop and self.previous.get("status") == "complete" and (
                commented == self.record["commented"]):
            return
        self.save(
            "complete", commented=commented, backup_key=outcome.backup_key,
            config_version=outcome.config_version or self.previous.get("config_version"),
            config_archive=outcome.config_archive or self.previous.get("config_archive"),
            execution_arn=outcome.execution_arn, execution_status=outcome.execution_status,
            endpoint=outcome.endpoint, endpoint_actions=list(outcome.endpoint_actions),
            variants=[v.__dict__ for v in outcome.variants], finished_at=_iso(self.now),
        )




def _merged(changes: list[Change]) -> tuple[Change, ...]:
    """One change per thing changed, in order: a thing changed twice (by the run that stopped
    and by this one) keeps its first ``before`` and its last ``after``."""
    merged: dict[tuple[str, str], Change] = {}
    for change in changes:
        first = merged.get((change.target, change.key))
        merged[(change.target, change.key)] = change if first is None else replace(
            change, before=first.before, drift=first.drift or change.drift)
    return tuple(merged.values())
