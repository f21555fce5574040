"""The CloudWatch alarms that guard a challenger, and what their states allow (pure).

Apply keeps two alarms of its own on the challenger variant, from the endpoint's
``AWS/SageMaker`` invocation metrics
(https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html):

- ``<target>-challenger-error-rate``: ``Invocation5XXErrors / Invocations`` (metric math,
  both summed over the period) above the request's ``error_rate``;
- ``<target>-challenger-latency``: ``ModelLatency`` at p99 above ``latency_ms``. CloudWatch
  reports ModelLatency in microseconds, so the threshold is ``latency_ms * 1000``.

A request may list alarms of its team's own (``names``), which are watched, never changed.
An alarm is OK, ALARM or INSUFFICIENT_DATA
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-states);
only ALARM stops a step up: INSUFFICIENT_DATA is what a fresh alarm on a quiet variant says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from bot.core.alarm_settings import Alarms
from bot.core.request import Request
from bot.settings import Target

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
STATES: tuple[State, ...] = ("OK", "ALARM", "INSUFFICIENT_DATA")

#: The variant the alarms watch (``bot.core.desired_state`` names the variants).
CHALLENGER_VARIANT = "challenger"


@dataclass(frozen=True)
class AlarmState:
    """One alarm as CloudWatch describes it now."""

    name: str
    state: State
    reason: str = ""
    updated: dt.datetime | None = None

    @property
    def firing(self) -> bool:
        return self.state == "ALARM"


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm the bot owns on the challenger variant.

    ``metric``: ``"error-rate"`` (metric math over Invocation5XXErrors and Invocations) or
    ``"latency"`` (ModelLatency, p99, microseconds); ``threshold`` is in the metric's unit
    (a share, or microseconds).
    """

    name: str
    metric: Literal["error-rate", "latency"]
    threshold: float
    period_seconds: int
    evaluation_periods: int
    endpoint: str
    variant: str = CHALLENGER_VARIANT

    @property
    def description(self) -> str:
        if self.metric == "error-rate":
            what = f"more than {self.threshold:.2%} of invocations answered 5xx"
        else:
            what = f"p99 model latency above {self.threshold / 1000:g} ms"
        return (f"promotion-bot: {self.endpoint} variant {self.variant}: {what} for "
                f"{self.evaluation_periods} x {self.period_seconds // 60} min")


def error_rate_name(target: Target) -> str:
    return f"{target.name}-challenger-error-rate"


def latency_name(target: Target) -> str:
    return f"{target.name}-challenger-latency"


def owned_prefix(target: Target) -> str:
    """The prefix every alarm the bot owns for ``target`` has (DescribeAlarms' AlarmNamePrefix)."""
    return f"{target.name}-challenger-"


def owned(target: Target, alarms: Alarms) -> tuple[AlarmSpec, ...]:
    """The alarms apply keeps on ``target``'s challenger variant while it serves."""
    period = alarms.period_minutes * 60
    return (
        AlarmSpec(error_rate_name(target), "error-rate", alarms.error_rate, period,
                  alarms.evaluation_periods, target.endpoint_name),
        AlarmSpec(latency_name(target), "latency", alarms.latency_ms * 1000, period,
                  alarms.evaluation_periods, target.endpoint_name),
    )


def guarded(request: Request | None) -> Alarms | None:
    """The request's alarm settings while it serves a challenger beside the champion."""
    if request is None or request.rollout.challenger is None:
        return None
    challenger = request.rollout.challenger
    return None if challenger.promoted else challenger.alarms


def watched(target: Target, request: Request | None) -> tuple[str, ...]:
    """Every alarm guarding ``target``'s challenger under ``request``: the bot's own, then
    the request's; none when the request serves no challenger beside the champion."""
    alarms = guarded(request)
    if alarms is None:
        return ()
    return tuple(spec.name for spec in owned(target, alarms)) + tuple(
        name for name in alarms.names if name not in {
            error_rate_name(target), latency_name(target)})


def firing(states: Mapping[str, AlarmState] | Iterable[AlarmState]) -> tuple[AlarmState, ...]:
    """The alarms in ALARM, by name."""
    values = states.values() if isinstance(states, Mapping) else states
    return tuple(sorted((s for s in values if s.firing), key=lambda s: s.name))
