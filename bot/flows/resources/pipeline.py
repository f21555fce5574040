"""The retraining pipeline: one Step Functions execution per change of what it retrains from."""

from __future__ import annotations

from typing import Any

from bot.adapters.aws import pipeline
from bot.core.desired_state import pipeline_execution
from bot.core.domain import Change, Fact, LiveState
from bot.flows.resources.base import Context, Step

kind = "pipeline"


def _name(context: Context) -> str | None:
    if context.request is None:
        return None
    return pipeline_execution(context.target, context.request, context.commit,
                              context.retrain_commit)


def read(context: Context) -> bool:
    """Whether the execution merging starts exists already."""
    name = _name(context)
    return name is not None and pipeline.find_execution(context.target, name) is not None


def desired(context: Context, live: LiveState, earlier: dict[str, Any]) -> str | None:
    return _name(context)


def changes(context: Context, want: str | None, live: LiveState) -> list[Change]:
    if want is None or live.get(kind):
        return []
    return [Change(kind, want, None, "start execution")]


def intend(step: Step) -> dict[str, Any]:
    return {}


def apply(step: Step) -> dict[str, Any]:
    if step.want is None:
        return {}
    config = step.desired.get("s3-config")
    t = step.target
    payload = {
        "target": t.name,
        "experiment_id": config.experiment_id if config else None,
        "commit": step.context.commit,
        "content_sha256": config.content_sha256 if config else None,
        "hyperparameters": step.desired.get("ssm"),
        "hyperparameters_path": t.ssm_prefix,
        "config_uri": t.config_uri,
        "model_artifact": config.model_artifact if config else None,
    }
    arn, _ = pipeline.start(t, step.want, payload, before_write=step.guard)
    return {"execution_arn": arn, "execution_status": str(pipeline.status(arn)["status"])}


def describe(details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    arn = details.get("execution_arn")
    if not arn:
        return (), ()
    status = details.get("execution_status")
    return (Fact("pipeline execution", f"{arn} ({status})", f"pipeline: {arn} {status}",
                 in_noop=True),), ()
