"""The staged rollout: a step at a time, each after its soak, unless overridden; rollback always."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.request import Request
from bot.core.rollout_rules import FIELD, STEPS_FIELD, Soak, check_rollout_step, soak_of

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LINES = {"": 1, "rollout": 10, "rollout.challenger": 11, FIELD: 12}
STEPS = [{"percent": 1, "soak_hours": 24}, {"percent": 10, "soak_hours": 24},
         {"percent": 50, "soak_hours": 48}, {"percent": 100}]


def request(share: int | None, *, override: str | None = None,
            steps: list[dict[str, Any]] | None = None, max_depth: int = 7,
            experiment: str = "exp-1") -> Request:
    rollout: dict[str, Any] = {}
    if share is not None:
        rollout["challenger"] = {"traffic_percent": share, "steps": steps or STEPS}
        if override:
            rollout["challenger"]["override_reason"] = override
    return Request.model_validate({
        "experiment_id": experiment, "algorithm": "xgboost",
        "hyperparameters": {"objective": "binary:logistic", "num_round": 150,
                            "max_depth": max_depth, "eta": 0.15, "subsample": 0.8,
                            "colsample_bytree": 0.8},
        "data": {"train": "s3://d/train.parquet", "test": "s3://d/test.parquet"},
        "rollout": rollout,
    })


def check(current: Request, previous: Request | None, hours_ago: float | None) -> list[str]:
    since = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    problems = check_rollout_step("r.yaml", current, LINES, previous, since, NOW)
    for problem in problems:  # the steps have no line of their own in LINES
        assert (problem.path, problem.line, problem.field) in {("r.yaml", 12, FIELD),
                                                               ("r.yaml", 11, STEPS_FIELD)}
    return [problem.reason for problem in problems]


def test_next_step_after_the_soak_is_fine() -> None:
    assert check(request(10), request(1), hours_ago=24) == []
    assert check(request(50), request(10), hours_ago=30) == []
    assert check(request(100), request(50), hours_ago=48.5) == []


def test_moving_up_before_the_soak_is_an_error() -> None:
    assert check(request(10), request(1), hours_ago=5.25) == [
        "the 1% step must soak 24h before the next step; it has soaked 5.2h since "
        "2026-11-25T06:45+00:00; set override_reason to do it anyway"
    ]
    [reason] = check(request(100), request(50), hours_ago=47.99)
    assert "must soak 48h" in reason and "soaked 47.9h" in reason


def test_skipping_a_step_is_an_error_even_after_the_soak() -> None:
    assert check(request(50), request(1), hours_ago=100) == [
        "skips the 10% step: from 1% the next step is 10% (got 50%); "
        "set override_reason to do it anyway"
    ]


def test_skipping_early_reports_both() -> None:
    skipped, early = check(request(100), request(10), hours_ago=1)
    assert skipped.startswith("skips the 50% step: from 10% the next step is 50% (got 100%)")
    assert early.startswith("the 10% step must soak 24h before the next step; it has soaked 1h")


def test_override_reason_lifts_the_rules() -> None:
    reason = "incident 42: the champion is broken, promote now"
    assert check(request(100, override=reason), request(1), hours_ago=0.1) == []
    assert check(request(50, override=reason), None, hours_ago=None) == []


@pytest.mark.parametrize("old, new", [(50, 10), (50, 1), (10, 1), (100, 1), (10, 10)])
def test_going_back_down_or_staying_is_always_allowed(old: int, new: int) -> None:
    assert check(request(new), request(old), hours_ago=0) == []


def test_removing_the_challenger_is_allowed() -> None:
    assert check(request(None), request(50), hours_ago=0) == []


@pytest.mark.parametrize("previous", [None, request(None)], ids=["no-file", "no-challenger"])
def test_a_new_challenger_starts_at_the_first_step(previous: Request | None) -> None:
    assert check(request(1), previous, hours_ago=None) == []
    assert check(request(10), previous, hours_ago=None) == [
        "a new challenger starts at the first step, 1% (got 10%); "
        "set override_reason to do it anyway"
    ]


def test_a_different_model_is_a_new_challenger() -> None:
    assert check(request(10, max_depth=8), request(1), hours_ago=48) == [
        "a new challenger starts at the first step, 1% (got 10%); "
        "set override_reason to do it anyway"
    ]
    [reason] = check(request(50, experiment="exp-2"), request(50), hours_ago=48)
    assert reason.startswith("a new challenger starts at the first step")


def test_shortening_the_soak_in_the_same_change_does_not_help() -> None:
    short = [{"percent": 1, "soak_hours": 1}, *STEPS[1:]]
    [reason] = check(request(10, steps=short), request(1), hours_ago=2)
    assert reason.startswith("the 1% step must soak 24h")


def test_a_step_without_soak_may_move_on_at_once() -> None:
    steps = [{"percent": 5}, {"percent": 100}]
    assert check(request(100, steps=steps), request(5, steps=steps), hours_ago=0) == []


def test_an_unknown_start_of_a_soaking_step_is_an_error() -> None:
    assert check(request(10), request(1), hours_ago=None) == [
        "the 1% step must soak 24h and when it started is unknown; "
        "set override_reason to do it anyway"
    ]


def test_less_than_an_hour_reads_in_minutes() -> None:
    [reason] = check(request(10), request(1), hours_ago=0.5)
    assert "soaked 30min since" in reason


STEPS_IN_FORCE = "[1% 24h, 10% 24h, 50% 48h, 100%]"


def test_deleting_the_next_steps_does_not_skip_them() -> None:
    """The steps in force are the previous request's: a change cannot skip the 10 % and 50 %
    steps by leaving them out of its own list."""
    short = [{"percent": 1, "soak_hours": 24}, {"percent": 100}]
    assert check(request(100, steps=short), request(1), hours_ago=100) == [
        "skips the 10% and 50% steps: from 1% the next step is 10% (got 100%, with the steps "
        f"in force {STEPS_IN_FORCE} and this change's [1% 24h, 100%]); "
        "set override_reason to do it anyway"
    ]


def test_leaving_out_steps_ahead_needs_a_reason_even_without_moving() -> None:
    """Else the next change would skip them with the edited list in force."""
    short = [{"percent": 1, "soak_hours": 24}, {"percent": 100}]
    assert check(request(1, steps=short), request(1), hours_ago=100) == [
        f"leaves out the 10% and 50% steps still ahead (with the steps in force {STEPS_IN_FORCE}"
        " and this change's [1% 24h, 100%]): a later change could skip them; "
        "set override_reason to do it anyway"
    ]
    [reason] = check(request(10, steps=[STEPS[0], STEPS[1], STEPS[3]]), request(1),
                     hours_ago=100)
    assert reason.startswith("leaves out the 50% step still ahead (with the steps in force")


def test_shortening_a_soak_still_ahead_needs_a_reason() -> None:
    quick = [STEPS[0], {"percent": 10, "soak_hours": 1}, *STEPS[2:]]
    [reason] = check(request(1, steps=quick), request(1), hours_ago=100)
    assert reason.startswith("shortens the soak of the 10% step from 24h to 1h (with the steps")
    assert check(request(1, steps=quick, override="the 10% step soaks in staging"), request(1),
                 hours_ago=100) == []


def test_adding_steps_and_longer_soaks_are_fine_and_count() -> None:
    finer = [STEPS[0], {"percent": 5, "soak_hours": 48}, *STEPS[1:]]
    assert check(request(1, steps=finer), request(1), hours_ago=100) == []
    assert check(request(5, steps=finer), request(1, steps=finer), hours_ago=30) == []
    [reason] = check(request(10, steps=finer), request(1), hours_ago=100)
    assert reason.startswith("skips the 5% step: from 1% the next step is 5% (got 10%")


@pytest.mark.parametrize("share", [1, None], ids=["down", "no-challenger"])
def test_going_down_with_edited_steps_is_allowed(share: int | None) -> None:
    short = [{"percent": 1, "soak_hours": 0}, {"percent": 100}]
    assert check(request(share, steps=short), request(50), hours_ago=0) == []


def test_the_soak_of_the_step_serving_now_is_the_one_the_rules_measure() -> None:
    since = NOW - timedelta(hours=30)
    assert soak_of(request(1), request(10), since) == Soak(1, since.isoformat(), 24.0)
    longer = [{"percent": 1, "soak_hours": 36}, *STEPS[1:]]
    assert soak_of(request(1), request(10, steps=longer), None) == Soak(1, None, 36.0)
    # No challenger of this model serves yet: it has no step to soak.
    assert soak_of(None, request(1), since) is None
    assert soak_of(request(1), request(1, max_depth=8), since) is None
    assert soak_of(request(1), request(None), since) is None
