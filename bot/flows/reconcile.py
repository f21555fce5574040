"""Reconcile one target to its desired state, in order SSM → config → pipeline → endpoint,
keeping the apply record up to date after every step so that a rerun resumes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.adapters import git
from bot.core.changes import changes as planned_changes
from bot.core.desired_state import Desired
from bot.core.domain import Approval, Change, EndpointSpec, LiveState, Outcome, VariantSpec
from bot.settings import Target

if TYPE_CHECKING:
    pass

from bot.flows.preflight import Item


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
        self.carried_backup = self.record["backup_keys"][-1] if (
            carried and self.record["backup_keys"]) else None
        self.applied: list[Change] = []

    def save(self, status: str, **fields: Any) -> None:
        from bot.adapters.aws import artifacts

        self.record.update(fields, status=status, updated_at=_iso(self.now))
        artifacts.put_apply_record(self.t, self.commit, self.record)

    def did(self, found: list[Change]) -> None:
        self.applied += found
        self.record["changes"] += [c.to_json() for c in found]
        self.record["drift"] += [c.to_json() for c in found if c.drift]

    def reconcile(self, want: Desired | None, live: LiveState, held: Any) -> Outcome:
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
            backup_key = ssm.backup(t, live.ssm, self.now)
            self.save("in-progress", backup_keys=[*self.record["backup_keys"], backup_key])
            ssm.write(t, want.ssm)
            self.did(of("ssm"))
            self.save("in-progress")
            held.refresh()

        written = config_store.write(t, want.config, self.now) if want is not None else None
        if written is not None and written.changed:
            self.did(of("s3-config"))
            self.save("in-progress", config_version=written.version,
                      config_archive=written.archive_uri)

        arn = status = None
        if want is not None and want.pipeline_execution:
            arn, started = pipeline.start(t, want.pipeline_execution, self._payload(want))
            status = str(pipeline.status(arn)["status"])
            if started:
                self.did(of("pipeline") or [
                    Change("pipeline", want.pipeline_execution, None, "start execution")])
                self.save("in-progress", execution_arn=arn, execution_status=status)

        endpoint_name: str | None = None
        variants: tuple[VariantSpec, ...] = ()
        actions: tuple[str, ...] = ()
        if want is not None and want.endpoint is not None:
            held.refresh()
            result = endpoint.reconcile(t, want.endpoint)
            endpoint_name, variants, actions = result.endpoint_name, result.variants, \
                result.actions
            if actions:
                self.did(of("endpoint") or [Change("endpoint", endpoint_name, None, "reconciled")])
        elif live.endpoint is not None:
            endpoint_name, variants = live.endpoint.endpoint_name, live.endpoint.variants

        return Outcome(
            target=t.name, path=self.item.path, commit=self.commit,
            content_sha256=self.record["content_sha256"], changes=tuple(self.applied),
            drift=tuple(c for c in self.applied if c.drift),
            backup_key=backup_key or self.carried_backup,
            config_version=written.version if written else None,
            config_archive=written.archive_uri if written else None,
            execution_arn=arn, execution_status=status, endpoint=endpoint_name,
            variants=tuple(variants), endpoint_actions=tuple(actions),
            noop=not self.applied,
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


