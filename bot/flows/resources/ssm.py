"""The hyperparameters in SSM Parameter Store, backed up before the apply's first write."""

from __future__ import annotations

from typing import Any

from bot.adapters.aws import ssm
from bot.core import names
from bot.core.changes import ssm_changes
from bot.core.desired_state import ssm_values
from bot.core.domain import Change, Fact, LiveState
from bot.flows.resources.base import Context, Step

kind = "ssm"


def read(context: Context) -> dict[str, str]:
    return ssm.read(context.target)


def desired(context: Context, live: LiveState, earlier: dict[str, Any]) -> dict[str, str] | None:
    if context.request is None:
        return None  # a deleted request leaves the hyperparameters as they are
    return ssm_values(context.request.hyperparameters)


def changes(context: Context, want: dict[str, str] | None, live: LiveState) -> list[Change]:
    return [] if want is None else ssm_changes(want, live, context.target.ssm_prefix)


def intend(step: Step) -> dict[str, Any]:
    # The backup's name is chosen (and recorded) before it is taken: a resumed or retried
    # run puts the same name, so it finds its own backup instead of taking a second one.
    return {"backup_key": step.details.get("backup_key")
            or names.ssm_backup_name(step.target, step.tag)}


def apply(step: Step) -> dict[str, Any]:
    if step.want is None or not step.planned:
        return {}
    t, key = step.target, step.details["backup_key"]
    step.guard()
    # A backup already under this apply's name was taken by this apply before its first
    # write (by a run whose answer was lost, or that was killed): live is half written now.
    ssm.backup_once(t, key, step.live.ssm)
    step.guard()
    ssm.write(t, step.want, before_each=step.alive)
    return {"backup_key": key}


def describe(details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    key = details.get("backup_key")
    return ((Fact("SSM backup", key, f"backup: {key}", in_noop=True),) if key else ()), ()
