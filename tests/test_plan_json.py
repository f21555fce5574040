"""plan.json: the typed plan stored and read back, and what is refused on reading."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_plan_comment import PLAN, planned

from bot.core import plan_json
from bot.core.domain import Change, GateResult
from bot.core.endpoint_values import EndpointComparison, LiveDifference, VariantStats
from bot.core.plan_json import UnreadablePlan
from bot.core.provenance import DataUsed
from bot.core.request import Rollout
from bot.core.rollout_rules import Soak

WHERE = "s3://models/plans/c/plan.json"


def full_plan() -> object:
    """A plan with every optional part set, so the round trip covers all of it."""
    stats = VariantStats("champion", 10, 2, 1, 0.1, 0.2, 0.5, 0.25, 4.0, 7.5, 0.8, "boom")
    recall = LiveDifference("recall", 0.5, 0.75, 0.25, -0.1, 0.5, "inconclusive", 0.3)
    comparison = EndpointComparison("ep", 10, 0.5, (stats,), 0.9, 4, 2.5, (recall,), 0, 1,
                                    1.0, "fine")
    guard = GateResult("flags", 1.0, 3.0, True, "flags 3", kind="guard")
    drop = GateResult("pr_auc", -0.02, None, True, "not evaluated", evaluated=False,
                      kind="max_drop", metric="pr_auc", detectable=0.07)
    return replace(
        planned(PLAN, Change("ssm", "/t/hyperparameters/eta", None, "0.1"),
                Change("endpoint", "ep/challenger", {"w": 1}, ["a", 2], drift=True)),
        champion_evaluation=PLAN.evaluation, notes=("a note",),
        rollout=Rollout.model_validate({"pipeline": True, "challenger": {"traffic_percent": 1}}),
        endpoint_comparison=comparison, primary_metric="pr_auc",
        gates=(guard, *PLAN.gates, drop),
        data=(DataUsed("train", "s3://d/train.parquet", 10, 2),
              DataUsed("test", "data/test.parquet")),
        reverts="f" * 40, soak=Soak(1, "2026-11-25T10:00:00+00:00", 24.0),
    )


def test_a_plan_survives_json_unchanged() -> None:
    plan = full_plan()
    text = plan_json.to_bytes(plan)  # type: ignore[arg-type]
    assert plan_json.from_bytes(text, WHERE) == plan
    data = json.loads(text)
    assert data["format"] == plan_json.FORMAT and data["passed"] is True
    assert data["evaluation"]["confusion_matrix"] == {"tn": 56_850, "fp": 9, "fn": 20, "tp": 80}
    assert data["gates"][1] == {"name": "accuracy >= 0.90", "threshold": 0.9, "value": 0.9995,
                                "passed": True, "detail": "", "evaluated": True, "kind": "",
                                "metric": "", "detectable": None, "point": None,
                                "ci_low": None, "ci_high": None, "warning": None,
                                "frauds": None}
    assert data["comparison"]["metrics"]["pr_auc"]["verdict"] == "worse"


def test_a_plan_of_the_previous_format_is_refused_clearly() -> None:
    previous = {"target": "fraud-detection", "content_sha256": "c" * 64, "passed": True,
                "metrics": {"accuracy": 0.99}, "changes": [], "artifact": "s3://b/m.tar.gz"}
    with pytest.raises(UnreadablePlan, match=r"format 1, this promotion-bot reads format 4; "
                                             r"re-run plan"):
        plan_json.from_json(previous, WHERE)


def test_a_plan_from_before_verdicts_is_refused_clearly() -> None:
    # Format 2's gates compared point differences: its "passed" must not be trusted now.
    data = {**plan_json.to_json(PLAN), "format": 2}
    with pytest.raises(UnreadablePlan, match="format 2, this promotion-bot reads format 4"):
        plan_json.from_json(data, WHERE)


def test_a_plan_from_before_plans_named_their_head_is_refused_clearly() -> None:
    # Format 3 was stored by content alone: no head, data versions, champion or signing time.
    data = {k: v for k, v in plan_json.to_json(PLAN).items() if k != "identity"}
    with pytest.raises(UnreadablePlan, match="format 3, this promotion-bot reads format 4; "
                                             "re-run plan"):
        plan_json.from_json({**data, "format": 3}, WHERE)


def test_an_unknown_format_is_refused() -> None:
    data = {**plan_json.to_json(PLAN), "format": 99}
    with pytest.raises(UnreadablePlan, match=f"{WHERE}: plan.json has format 99"):
        plan_json.from_json(data, WHERE)


def test_a_passed_flag_that_contradicts_the_gates_is_refused() -> None:
    failing = replace(PLAN, gates=(GateResult("recall >= 0.9", 0.9, 0.5, False),))
    data = {**plan_json.to_json(failing), "passed": True}
    with pytest.raises(UnreadablePlan, match="says passed=True but its gates say False"):
        plan_json.from_json(data, WHERE)


@pytest.mark.parametrize("edit", [
    lambda d: d.pop("artifact"),
    lambda d: d.update(surprise=1),
    lambda d: d["evaluation"].update(rows="many"),
])
def test_a_malformed_plan_names_the_field(edit: object) -> None:
    data = plan_json.to_json(PLAN)
    edit(data)  # type: ignore[operator]
    with pytest.raises(UnreadablePlan, match=f"{WHERE}: plan.json: "):
        plan_json.from_json(data, WHERE)


def test_not_json_is_refused() -> None:
    with pytest.raises(UnreadablePlan, match="not valid JSON"):
        plan_json.from_bytes(b"{", WHERE)
