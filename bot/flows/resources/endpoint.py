"""The production SageMaker endpoint: champion and challenger variants with their shares."""

from __future__ import annotations

from typing import Any

from bot.adapters.aws import endpoint
from bot.core.changes import endpoint_changes
from bot.core.desired_state import endpoint_spec, retired_endpoint
from bot.core.domain import Change, EndpointSpec, Fact, LiveState
from bot.flows.resources.base import Context, Step
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
    result = endpoint.reconcile(step.target, step.want, guard=step.guard, alive=step.alive)
    return _details(EndpointSpec(result.endpoint_name, result.variants), result.actions)


def describe(details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    name = details.get("endpoint")
    if not name:
        return (), ()
    variants = details.get("variants") or []
    shares = ", ".join(f"{v['name']} {v['weight']}%" for v in variants)
    return (Fact("endpoint", f"{name}: {shares}", f"endpoint {name}: " + ", ".join(
        f"{v['name']} {v['weight']}% {shorten(v['model_data_url'])}" for v in variants)),), \
        tuple(details.get("endpoint_actions") or ())
