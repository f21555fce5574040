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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.core.alarm_settings import Alarms
from bot.core.domain import EndpointSpec
from bot.core.production_config import ProductionConfig
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
    def summary(self) -> str:
        """The alarm in a few words, as plan and apply show it."""
        if self.metric == "error-rate":
            what = f"5xx share of invocations > {self.threshold:.2%}"
        else:
            what = f"p99 ModelLatency > {self.threshold / 1000:g} ms"
        return f"{what} for {self.evaluation_periods} x {self.period_seconds // 60} min"

    @property
    def description(self) -> str:
        """The alarm's description in CloudWatch: its summary on its variant, signed as the
        bot's (plan and apply name the alarm beside its summary, which says the variant)."""
        return f"promotion-bot: {self.summary} on {self.endpoint}/{self.variant}"


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


def wanted(target: Target, request: Request | None) -> tuple[AlarmSpec, ...]:
    """The alarms apply keeps under ``request``: the bot's own while a challenger serves
    beside the champion; none when it goes (no challenger, a promotion, a deleted request)."""
    alarms = guarded(request)
    return () if alarms is None else owned(target, alarms)


def guarding(target: Target, request: Request | None) -> tuple[str, ...]:
    """Every alarm name that guards a step of ``request``'s challenger, also one that
    promotes it (where ``watched`` is empty: after the promotion nothing is watched)."""
    if request is None or request.rollout.challenger is None:
        return ()
    alarms = request.rollout.challenger.alarms
    own = tuple(spec.name for spec in owned(target, alarms))
    return own + tuple(name for name in alarms.names if name not in own)


def challenger_share(request: Request | None) -> int:
    """The challenger's percent of traffic ``request`` asks for (100: promoted; 0: none)."""
    if request is None or request.rollout.challenger is None:
        return 0
    return request.rollout.challenger.traffic_percent


def shares(request: Request | None, config: ProductionConfig | None,
           live: EndpointSpec | None) -> tuple[int, int]:
    """The challenger variant's share of traffic now (on the ``live`` endpoint: a brake's 0
    counts, unless ``request`` goes below the share the ``config`` holds) and after merging
    ``request``. A promotion production already serves (the
    config holds this content, no challenger variant is left) is no step: it reads 100, 100."""
    after = challenger_share(request)
    variant = live.variant(CHALLENGER_VARIANT) if live is not None else None
    if variant is not None:
        held = config.challenger_traffic_percent if config is not None else None
        if held is not None and after < held:
            # Below the share production's config holds: a way back down (the revert of a
            # braked step, whose live share is 0), never a step up.
            return max(variant.weight, held), after
        return variant.weight, after
    served = (request is not None and config is not None
              and config.content_sha256 == request.content_sha256())
    return (after if served and after == 100 else 0), after


def blocking(before: int, after: int, states: Mapping[str, AlarmState]
             ) -> tuple[AlarmState, ...]:
    """The alarms that stop the challenger's share going from ``before`` to ``after`` percent:
    those in ALARM, when the share rises. Staying, going down and removing the challenger are
    always allowed (a rollback never waits); INSUFFICIENT_DATA never blocks."""
    return firing(states) if after > before else ()


def refusal(before: int, after: int, fired: tuple[AlarmState, ...]) -> str:
    """One line saying why the step from ``before`` to ``after`` percent is refused."""
    step = "promoting the challenger to 100%" if after == 100 else (
        f"raising the challenger's traffic from {before}% to {after}%")
    alarms = "; ".join(f"{s.name} is in ALARM ({s.reason or 'no reason given'})"
                       for s in fired)
    return (f"no step up while an alarm fires: {alarms}; {step} waits until it is OK "
            "(going down or removing the challenger is always allowed)")


def waiting(states: Mapping[str, AlarmState]) -> tuple[AlarmState, ...]:
    """The alarms in INSUFFICIENT_DATA (they never block a step; plan shows them)."""
    return tuple(sorted((s for s in states.values() if s.state == "INSUFFICIENT_DATA"),
                        key=lambda s: s.name))


#: How the plan's notes on the alarms begin (a stored plan's old notes are replaced).
ALARM_NOTE = "Alarm "


def notes(listed: Sequence[str], states: Mapping[str, AlarmState], before: int, after: int,
          ) -> tuple[str, ...]:
    """The plan's lines on the alarms guarding the challenger: the refusal when a step up
    meets an alarm in ALARM, each alarm in INSUFFICIENT_DATA, each alarm of the team's
    (``listed``) that does not exist."""
    found = []
    fired = blocking(before, after, states)
    if fired:
        found.append(f"{ALARM_NOTE}check: apply refuses this change: " +
                     refusal(before, after, fired))
    found += [f"{ALARM_NOTE}{s.name} is in INSUFFICIENT_DATA ({s.reason or 'no reason given'})"
              ": it does not block a step" for s in waiting(states)]
    found += [f"{ALARM_NOTE}{name} (rollout.challenger.alarms.names) does not exist in "
              "CloudWatch: it guards nothing until it is created" for name in listed
              if name not in states]
    return tuple(found)


def with_notes(existing: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    """``existing`` without earlier alarm notes, then ``new``."""
    return (*(n for n in existing if not n.startswith(ALARM_NOTE)), *new)
