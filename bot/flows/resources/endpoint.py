"""The production SageMaker endpoint: champion and challenger variants with their shares.

An update that deploys a new config (a new challenger, another model) names the alarms that
guard the challenger (``bot.core.alarms.watched``) in its ``DeploymentConfig``, with the
request's baking period, so SageMaker rolls it back itself when one fires. Then this apply
did not take: production serves the previous models, so the production config this apply
wrote is put back (``config.restore``: it never claims a challenger that does not serve),
the rollback is recorded in the apply record (``rolled_back``) and the apply fails saying why.
"""

from __future__ import annotations

from typing import Any

from bot.adapters.aws import endpoint
from bot.adapters.aws.endpoint_guardrails import RETRY, Guardrails, RolledBack
from bot.core.alarms import guarded, shares, watched
from bot.core.changes import endpoint_changes
from bot.core.desired_state import endpoint_spec, retired_endpoint
from bot.core.domain import Change, EndpointSpec, Fact, LiveState
from bot.core.production_config import ProductionConfig
from bot.flows.resources import config
from bot.flows.resources.base import Context, Step, StepFailed
from bot.report.apply_outcome import shorten

kind = "endpoint"


def read(context: Context) -> EndpointSpec | None:
    return endpoint.read(context.target)


def desired(context: Context, live: LiveState, earlier: dict[str, Any]) -> EndpointSpec | None:
    config = earlier.get("s3-config")
    if context.request is None or context.plan is None:
        return retired_endpoint(context.target, config, live.endpoint)
    champion = config.champion if config is not None else None
    return endpoint_spec(context.target, context.request, context.plan, champion)


def changes(context: Context, want: EndpointSpec | None, live: LiveState) -> list[Change]:
    return endpoint_changes(want, live)


def intend(step: Step) -> dict[str, Any]:
    return {}


def _details(spec: EndpointSpec, actions: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"endpoint": spec.endpoint_name, "endpoint_actions": list(actions),
            "variants": [v.__dict__ for v in spec.variants]}


def apply(step: Step) -> dict[str, Any]:
    if step.want is None:
        live = step.live.endpoint
        return {} if live is None else _details(live)
    try:
        result = endpoint.reconcile(step.target, step.want, guard=step.guard,
                                    alive=step.alive,
                                    guardrails=guardrails(step.context, step.live.endpoint,
                                                          step.live.config))
    except RolledBack as rolled:
        restored = config.restore(step)
        rolled_back = {"alarms": list(rolled.alarms), "reason": rolled.reason,
                       "deployment_config": rolled.deployment}
        said = (f"; the production config is back to what serves (commit "
                f"{restored['config_restored_commit'][:12]})" if restored else "")
        raise StepFailed(f"{rolled.summary}{said}; {RETRY}",
                         {**_details(rolled.served, rolled.actions),
                          "rolled_back": rolled_back, **restored}) from None
    return {**_details(EndpointSpec(result.endpoint_name, result.variants), result.actions),
            "rolled_back": None}


def guardrails(context: Context, live: EndpointSpec | None = None,
               production: ProductionConfig | None = None) -> Guardrails:
    """What guards an update of the endpoint under the context's request: the alarms on its
    challenger and the request's baking period. An update that does not raise the
    challenger's share on the ``live`` endpoint names no alarm: going down must never be
    rolled back to the larger share by the alarm that made someone go down."""
    settings = guarded(context.request)
    before, after = shares(context.request, production, live)
    return Guardrails(
        alarms=watched(context.target, context.request) if after > before else (),
        baking_seconds=settings.baking_minutes * 60 if settings is not None else 0)


def describe(details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    name = details.get("endpoint")
    if not name:
        return (), ()
    variants = details.get("variants") or []
    shares = ", ".join(f"{v['name']} {v['weight']}%" for v in variants)
    rolled_back = details.get("rolled_back")
    if rolled_back:
        alarms = rolled_back.get("alarms") or []
        why = (f"because alarm {', '.join(alarms)} fired during the baking period" if alarms
               else f"({rolled_back.get('reason') or 'no reason given'})")
        line = (f"AWS rolled endpoint {name} back {why}; production serves the previous "
                f"models: {shares}")
        return (Fact("endpoint", f"{name}: rolled back, {shares}", line),), \
            tuple(details.get("endpoint_actions") or ())
    return (Fact("endpoint", f"{name}: {shares}", f"endpoint {name}: " + ", ".join(
        f"{v['name']} {v['weight']}% {shorten(v['model_data_url'])}" for v in variants)),), \
        tuple(details.get("endpoint_actions") or ())
