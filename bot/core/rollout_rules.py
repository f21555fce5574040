"""The staged rollout's rules: one step up at a time, and only after the step has soaked.

A pure function of the request before and after a change, so the same rule holds on the
pull request (plan) and on merge (apply). The steps in force are the ones of the request
before the change (what production serves), so a change cannot skip steps by editing the
list. An ``override_reason`` lifts the rules; going back down is always allowed, because a
rollback must never wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.request import Challenger, Request
from bot.errors import Problem


@dataclass(frozen=True)
class Soak:
    """How long the challenger's share now serving has soaked, against its step's minimum
    (``soak_of``); the plan carries it for the comment."""

    share: int  # the challenger's percent of traffic now
    since: str | None  # ISO 8601, UTC: when that share took effect on main (None: unknown)
    minimum_hours: float  # the step's minimum soak before the next step


FIELD = "rollout.challenger.traffic_percent"
STEPS_FIELD = "rollout.challenger.steps"


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

    The steps in force are the previous request's: the change is read against them, not
    against the steps it brings itself, so a change cannot skip a step by deleting it. It
    may add steps or lengthen soaks (the stricter of both lists counts), but leaving out a
    step ahead of the current share, or shortening a soak still ahead, needs
    ``override_reason`` like any skip, even when the share stays where it is (else the next
    change would skip it).
    """
    challenger = current.rollout.challenger
    if challenger is None or challenger.override_reason:
        return []

    def problem(reason: str, field: str = FIELD) -> Problem:
        keys = (field, "rollout.challenger", "rollout", "")
        line = next((lines[f] for f in keys if f in lines), None)
        return Problem(path, line, field, f"{reason}; set override_reason to do it anyway")

    percents = [step.percent for step in challenger.steps]
    share = challenger.traffic_percent
    before = same_challenger(previous, current)
    if before is None:
        if share != percents[0]:
            return [problem(f"a new challenger starts at the first step, {percents[0]}% "
                            f"(got {share}%)")]
        return []
    old = before.traffic_percent
    if share < old:
        return []  # going back down never waits, whatever the steps say
    problems = []
    in_force = {step.percent: step.soak_hours for step in before.steps}
    proposed = {step.percent: step.soak_hours for step in challenger.steps}
    edited = "" if proposed == in_force else (
        f"with the steps in force {_list(in_force)} and this change's {_list(proposed)}")
    skipped = sorted(p for p in {*in_force, *proposed} if old < p < share)
    if skipped:
        next_step = min(p for p in {*in_force, *proposed} if p > old)
        problems.append(problem(f"skips {_steps(skipped)}: from {old}% the next step is "
                                f"{next_step}% (got {share}%{f', {edited}' if edited else ''})"))
    left_out = [p for p in in_force if p > share and p not in proposed]
    shortened = [p for p, hours in in_force.items()
                 if share <= p < 100 and p in proposed and proposed[p] < hours]
    if left_out or shortened:
        what = [f"leaves out {_steps(left_out)} still ahead"] if left_out else []
        what += [f"shortens the soak of the {p}% step from {_hours(in_force[p])} to "
                 f"{_hours(proposed[p])}" for p in shortened]
        them = "them" if len(left_out) + len(shortened) > 1 else "it"
        steps = f" ({edited})" if edited and not skipped else ""
        problems.append(problem(f"{' and '.join(what)}{steps}: a later change could skip {them}",
                                STEPS_FIELD))
    if share == old:
        return problems
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


def soak_of(previous: Request | None, current: Request, since: datetime | None) -> Soak | None:
    """The step the challenger of ``current`` serves now (in ``previous``, the request on
    main, since ``since``) and its minimum soak, the longer of both requests' as the rules
    read it; None when no such challenger serves yet (a new one starts at the first step)."""
    challenger = current.rollout.challenger
    before = same_challenger(previous, current)
    if challenger is None or before is None:
        return None
    share = before.traffic_percent
    soak = max((s.soak_hours for s in (*before.steps, *challenger.steps) if s.percent == share),
               default=0.0)
    return Soak(share, since.isoformat() if since is not None else None, soak)


def _steps(percents: list[int]) -> str:
    """``the 10% step``, ``the 10% and 50% steps``, ``the 5%, 10% and 50% steps``."""
    named = [f"{p}%" for p in percents]
    if len(named) == 1:
        return f"the {named[0]} step"
    return f"the {', '.join(named[:-1])} and {named[-1]} steps"


def _list(steps: dict[int, float]) -> str:
    """``[1% 24h, 10% 24h, 100%]``: a steps list in a line."""
    return "[" + ", ".join(f"{p}%" + (f" {_hours(h)}" if h else "")
                           for p, h in sorted(steps.items())) + "]"


def same_challenger(previous: Request | None, current: Request) -> Challenger | None:
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
