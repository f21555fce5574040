"""The production config YAML in S3, the one it replaces archived under the apply's name."""

from __future__ import annotations

from typing import Any

from bot.adapters.aws import config_store
from bot.core import names
from bot.core.changes import config_changes
from bot.core.desired_state import production_config
from bot.core.domain import Change, Fact, LiveState
from bot.core.production_config import ProductionConfig
from bot.flows.resources.base import Context, Step

kind = "s3-config"


def read(context: Context) -> ProductionConfig | None:
    return config_store.read(context.target)


def desired(context: Context, live: LiveState, earlier: dict[str, Any]
            ) -> ProductionConfig | None:
    if context.request is None or context.plan is None:
        # A deleted request retires the challenger: no share in the config any more.
        return None if live.config is None else live.config.model_copy(
            update={"challenger_traffic_percent": None})
    return production_config(context.target, context.request, context.plan, live.config,
                             context.commit, context.pull_request, context.approval)


def changes(context: Context, want: ProductionConfig | None, live: LiveState) -> list[Change]:
    return [] if want is None else config_changes(want, live, context.target.config_uri)


def intend(step: Step) -> dict[str, Any]:
    if step.live.config is None:
        return {}
    return {"archive_key": step.details.get("archive_key")
            or names.config_archive_key(step.target, step.tag)}


def apply(step: Step) -> dict[str, Any]:
    if step.want is None:
        return {}
    written = config_store.write(step.target, step.want, step.now, before_write=step.guard,
                                 archive_key=step.details.get("archive_key"))
    details: dict[str, Any] = {"config_version": written.version}
    archive = step.details.get("archive_key")
    if written.archive_uri is not None:
        details["config_archive"] = written.archive_uri
    elif archive is not None and step.planned == () and step.details:
        # Written by the interrupted run of this apply, which archived the old one first.
        details["config_archive"] = f"s3://{step.target.config_bucket}/{archive}"
    return details


def restore(step: Step) -> dict[str, Any]:
    """Put back the production config this apply replaced, when what it described did not
    take (AWS rolled the endpoint's update back): the live config read before the apply
    wrote, or, when an interrupted run of this apply wrote it, the archive that run took.
    Returns the details to record (nothing when there was no config before)."""
    previous = step.live.config
    if previous is not None and previous.commit == step.context.commit:
        previous = config_store.read_archive(step.target,
                                             names.config_archive_key(step.target, step.tag))
    if previous is None:
        return {}
    written = config_store.write(step.target, previous, step.now, before_write=step.guard)
    return {"config_restored": written.version,
            "config_restored_commit": previous.commit}


def describe(details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    version, archive = details.get("config_version"), details.get("config_archive")
    facts = []
    if version:
        archived = f" (previous archived at {archive})" if archive else ""
        facts.append(Fact("config version", version, f"config version: {version}{archived}"))
    if archive:
        facts.append(Fact("previous config archived", archive, ""))
    return tuple(facts), ()
