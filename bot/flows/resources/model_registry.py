"""The SageMaker Model Registry as a mirror of git: each model production serves is
``Approved``, a model that leaves production is ``Rejected`` with the reason.

Its desired state follows the endpoint's and the config's (the kinds before it): the models
on the endpoint after merging, and the previous champion (a rollback's target), stay or
become approved; an approved model that is neither is rejected. Plan registers the models
(``bot.flows.plan``); this kind only changes statuses, so a model that was never registered
(a champion from before the registry) is left out. The module is not named ``registry``:
``bot.flows.resources.registry`` is the function listing every kind.
"""

from __future__ import annotations

from typing import Any

from bot.adapters.aws import registry
from bot.core import model_registry as mr
from bot.core.domain import Change, EndpointSpec, Fact, LiveState, Plan
from bot.core.integrity import model_digest
from bot.core.model_registry import Registered, Wanted
from bot.core.production_config import ProductionConfig
from bot.flows.resources.base import Context, Step

kind = mr.KIND


def read(context: Context) -> dict[str, Registered]:
    """The target's registered models by digest, with their status."""
    return registry.packages(context.target)


def with_registered(live: LiveState, plan: Plan) -> LiveState:
    """``live`` with the plan's model registered (``PendingManualApproval``) if it is not yet:
    the plan run registers it, so what merging changes counts it."""
    digest = plan.model_sha256
    found: dict[str, Registered] = dict(live.get(kind) or {})
    if digest is None or digest in found:
        return live
    found[digest] = Registered(digest, "", None, mr.PENDING)
    return LiveState({**live.resources, kind: found})


def _digests(spec: EndpointSpec | None) -> set[str]:
    if spec is None:
        return set()
    return {d for v in spec.variants if (d := model_digest(v.model_data_url)) is not None}


def _kept(config: ProductionConfig | None) -> set[str]:
    if config is None:
        return set()
    return {d for m in (config.champion, config.previous_champion) if m is not None
            and (d := model_digest(m.model_artifact)) is not None}


def _by(context: Context) -> str:
    pr = f" (pull request #{context.pull_request})" if context.pull_request else ""
    return f"{context.commit[:12]}{pr}"


def desired(context: Context, live: LiveState, earlier: dict[str, Any]
            ) -> dict[str, Wanted] | None:
    registered: dict[str, Registered] = live.get(kind) or {}
    if not registered:
        return None
    endpoint: EndpointSpec | None = earlier.get("endpoint") or live.endpoint
    config: ProductionConfig | None = earlier.get("s3-config") or live.config
    approval = context.approval
    approved_by = (f", approved by {', '.join(approval.approvers)}"
                   if approval.source != "pending" and approval.approvers else "")
    name = endpoint.endpoint_name if endpoint is not None else "the endpoint"
    retired = " (request file deleted)" if context.request is None else ""
    if context.reverts:
        retired += f", a revert of {context.reverts}"
    return mr.wanted(
        serving=_digests(endpoint), keep=_kept(config), live_serving=_digests(live.endpoint),
        live=registered,
        approve_reason=mr.cut(f"deployed to {name} by {_by(context)}{approved_by}"),
        reject_reason=mr.cut(f"removed from production by {_by(context)}{retired}"))


def changes(context: Context, want: dict[str, Wanted] | None, live: LiveState
            ) -> list[Change]:
    return mr.changes(want, live.get(kind) or {})


def intend(step: Step) -> dict[str, Any]:
    return {}


def apply(step: Step) -> dict[str, Any]:
    """Set each status that differs (one call per model; setting a status again is harmless,
    so a resumed apply just finishes); records every wanted model's status."""
    want: dict[str, Wanted] = step.want or {}
    registered: dict[str, Registered] = step.live.get(kind) or {}
    models = []
    for digest, wanted in sorted(want.items()):
        package = registered.get(digest)
        if package is None or not package.arn:
            continue
        if package.status != wanted.status:
            step.guard()
            registry.set_status(step.target, package.arn, wanted.status, wanted.reason)
        models.append({"model": mr.short(digest), "arn": package.arn,
                       "status": wanted.status, "reason": wanted.reason})
    return {"registry": models} if models else {}


def describe(details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    models = details.get("registry") or []
    if not models:
        return (), ()
    value = ", ".join(f"{m['model']} {m['status']}" for m in models)
    return (Fact("model registry", value, f"model registry: {value}"),), ()
