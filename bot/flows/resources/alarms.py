"""The CloudWatch alarms the bot keeps on the challenger variant while it serves.

Two metric alarms per target (``bot.core.alarms.owned``): ``<target>-challenger-error-rate``
(``Invocation5XXErrors / Invocations`` by metric math) and ``<target>-challenger-latency``
(``ModelLatency`` p99, in microseconds), on the endpoint's ``AWS/SageMaker`` metrics with the
dimensions ``EndpointName`` and ``VariantName``
(https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html), with the
request's thresholds (``rollout.challenger.alarms``). Created or updated while a challenger
is (to be) served beside the champion, deleted when it goes (removed, promoted, request
deleted). The alarms a request lists as its team's are watched, never created or changed.

Registered before the endpoint: the alarms exist before an update whose deployment
guardrails name them, and ``earlier`` holds them for the kinds after.
"""

from __future__ import annotations

import math
from typing import Any

from bot.adapters.aws import alarms
from bot.core.alarms import AlarmSpec, error_rate_name, latency_name, wanted
from bot.core.domain import Change, Fact, LiveState
from bot.flows.resources.base import Context, Step

kind = "alarms"


def _names(context: Context) -> tuple[str, ...]:
    return error_rate_name(context.target), latency_name(context.target)


def read(context: Context) -> dict[str, AlarmSpec]:
    """The bot's own alarms of the target that exist, by name."""
    return alarms.read_specs(context.target, _names(context))


def desired(context: Context, live: LiveState, earlier: dict[str, Any]
            ) -> tuple[AlarmSpec, ...]:
    return wanted(context.target, context.request)


def _text(spec: AlarmSpec | None) -> str | None:
    if spec is None:
        return None
    if math.isnan(spec.threshold):
        return "changed outside promotion-bot"
    return spec.summary


def _planned(want: tuple[AlarmSpec, ...] | None, live: LiveState
             ) -> list[tuple[str, AlarmSpec | None, AlarmSpec | None]]:
    """(name, live, wanted) of each alarm that differs, in name order."""
    have: dict[str, AlarmSpec] = live.get(kind) or {}
    by_name = {spec.name: spec for spec in want or ()}
    return [(name, have.get(name), by_name.get(name)) for name in sorted({*have, *by_name})
            if have.get(name) != by_name.get(name)]


def changes(context: Context, want: tuple[AlarmSpec, ...] | None, live: LiveState
            ) -> list[Change]:
    return [Change(kind, name, _text(before), _text(after))
            for name, before, after in _planned(want, live)]


def intend(step: Step) -> dict[str, Any]:
    return {}


def apply(step: Step) -> dict[str, Any]:
    """Put each alarm that differs (PutMetricAlarm replaces by name, so putting one again is
    harmless) and delete the ones no longer wanted; a resumed apply reads live again and
    finishes. Records every alarm kept and every one deleted."""
    planned = _planned(step.want, step.live)
    gone = [name for name, _, after in planned if after is None]
    for _, _, after in planned:
        if after is not None:
            step.guard()
            alarms.put(step.target, after)
    if gone:
        step.guard()
        alarms.delete(step.target, gone)
    kept = [{"name": spec.name, "alarm": spec.summary} for spec in step.want or ()]
    return {"alarms": kept, "alarms_deleted": gone} if kept or gone else {}


def describe(details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    kept = details.get("alarms") or []
    gone = details.get("alarms_deleted") or []
    if not kept and not gone:
        return (), ()
    value = ", ".join([*(a["name"] for a in kept), *(f"{name} deleted" for name in gone)])
    return (Fact("alarms", value, "alarms: " + "; ".join(
        [*(f"{a['name']}: {a['alarm']}" for a in kept),
         *(f"{name} deleted" for name in gone)])),), ()
