"""The staged rollout's rules: one step up at a time, and only after the step has soaked.

A pure function of the request before and after a change, so the same rule holds on the
pull request (plan) and on merge (apply). An ``override_reason`` lifts the rule; going
back down is always allowed, because a rollback must never wait.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from bot.core.request import Challenger, Request
from bot.errors import Problem

FIELD = "rollout.challenger.traffic_percent"


def check_rollout_step(
    path: str,
    current: Request,
    lines: dict[str, int],
    previous: Request | None,
    previous_since: datetime | None,
    now: datetime,
) -> list[Problem]:
    """Problems with moving the challenger's traffic from ``previous`` to ``current``.

    ``previous_since`` is when the previous share took effect (None: unknown). A previous
    challenger counts only if it serves the same model (experiment, algorithm,
    hyperparameters, data); a new model starts again at the first step.
    """
    challenger = current.rollout.challenger
    if challenger is None or challenger.override_reason:
        return []
    line = next((lines[f] for f in (FIELD, "rollout.challenger", "rollout", "") if f in lines),
                None)

    def problem(reason: str) -> Problem:
        return Problem(path, line, FIELD, f"{reason}; set override_reason to do it anyway")

    percents = [step.percent for step in challenger.steps]
    share = challenger.traffic_percent
    before = _same_challenger(previous, current)
    if before is None:
        if share != percents[0]:
            return [problem(f"a new challenger starts at the first step, {percents[0]}% "
                            f"(got {share}%)")]
        return []
    old = before.traffic_percent
    if share <= old:
        return []
    problems = []
    next_step = min(p for p in percents if p > old)
    if share > next_step:
        problems.append(problem(f"skips a step: from {old}% the next step is {next_step}% "
                                f"(got {share}%)"))
    # The longer soak counts, so a change cannot shorten the soak it is measured against.
    soak = max((s.soak_hours for s in (*before.steps, *challenger.steps) if s.percent == old),
               default=0.0)
    if soak > 0:
        if previous_since is None:
            problems.append(problem(f"the {old}% step must soak {_hours(soak)} and when it "
                                    "started is unknown"))
        elif now - previous_since < timedelta(hours=soak):
            soaked = (now - previous_since).total_seconds() / 3600
            problems.append(problem(
                f"the {old}% step must soak {_hours(soak)} before the next step; it has "
                f"soaked {_hours(soaked)} since {previous_since.isoformat(timespec='minutes')}"
            ))
    return problems


def _same_challenger(previous: Request | None, current: Request) -> Challenger | None:
    """The previous challenger if it serves the model ``current`` describes, else None."""
    if previous is None or previous.rollout.challenger is None:
        return None
    same_model = (
        previous.experiment_id == current.experiment_id
        and previous.algorithm == current.algorithm
        and previous.hyperparameters == current.hyperparameters
        and previous.data == current.data
    )
    return previous.rollout.challenger if same_model else None


def _hours(hours: float) -> str:
    """Rounded down, so a soak one minute short never reads as complete."""
    if hours >= 1 or hours <= 0:
        return f"{math.floor(hours * 10) / 10:g}h"
    return f"{math.floor(hours * 60)}min"
