"""The production gates (6.5): intervals, not point differences; the guard; what a test set
can detect; and the warning about accuracy on imbalanced data."""

from __future__ import annotations

import pytest

from bot.core.comparison import detectable_difference, unpaired, verdict
from bot.core.domain import (
    Comparison,
    ConfusionMatrix,
    Curve,
    Evaluation,
    GateResult,
    MetricComparison,
)
from bot.core.gates import accuracy_is_uninformative, check, guard
from bot.core.power import power_note
from bot.core.request import Gates

CURVE = Curve(x=(0.0, 1.0), y=(0.0, 1.0))


def evaluation(tn: int, fp: int, fn: int, tp: int, distinct: int | None = 500,
               **metrics: float) -> Evaluation:
    rows = tn + fp + fn + tp
    values = {"accuracy": (tn + tp) / rows, "precision": tp / max(tp + fp, 1),
              "recall": tp / max(tp + fn, 1), "f1_score": 0.0, "auc_roc": 0.9, "pr_auc": 0.5}
    values.update(metrics)
    return Evaluation(metrics=values, confusion_matrix=ConfusionMatrix(tn, fp, fn, tp),
                      roc=CURVE, pr=CURVE, positives=tp + fn, rows=rows,
                      majority_accuracy=(tn + fp) / rows, distinct_scores=distinct)


GOOD = evaluation(tn=9_980, fp=2, fn=4, tp=14)
ONLY = Gates(minimum={}, max_drop={})  # no request gates: only the guard


def paired_comparison(difference: float, low: float, high: float, se: float = 0.02,
                      metric: str = "pr_auc") -> Comparison:
    compared = MetricComparison(current=0.9, baseline=0.9 - difference, difference=difference,
                                percent_change=0.0, verdict=verdict((low, high)),
                                ci_low=low, ci_high=high, se=se,
                                detectable=detectable_difference(se))
    return Comparison(paired=True, method="paired", metrics={metric: compared})


def request_gates(gates: Gates, ev: Evaluation, comparison: Comparison) -> list[GateResult]:
    """The gates a request asked for: all but the guard, which always comes first, and the
    alerts gate, which every request has and comes after the metrics' gates."""
    first, *rest, alerts = check(gates, ev, comparison)
    assert first.kind == "guard" and alerts.kind == "max_alert_increase"
    return rest


def test_the_format_defaults_are_accuracy_the_ranking_metrics_and_alerts() -> None:
    *_, alerts = check(Gates(), GOOD, unpaired(GOOD.metrics, {}))
    accuracy, roc, pr, recall = request_gates(Gates(), GOOD, unpaired(GOOD.metrics, {}))

    assert (alerts.kind, alerts.threshold) == ("max_alert_increase", 0.15)

    assert accuracy.name == "accuracy >= 0.90"
    assert accuracy.threshold == 0.9 and accuracy.passed
    assert (roc.metric, roc.threshold) == ("auc_roc", -0.01)
    assert (pr.metric, pr.threshold) == ("pr_auc", -0.02)
    assert (recall.metric, recall.threshold) == ("recall", -0.05)


def test_a_minimum_not_reached_fails() -> None:
    gates = Gates(minimum={"recall": 0.8, "precision": 0.925}, max_drop={})

    recall, precision = request_gates(gates, GOOD, unpaired(GOOD.metrics, {}))

    assert recall.name == "recall >= 0.80" and not recall.passed
    assert precision.name == "precision >= 0.925"
    assert not precision.passed
    assert "0.7778" in recall.detail


@pytest.mark.parametrize(("low", "high", "passed"), [
    (-0.060, 0.010, True),   # could be equal: not shown to drop
    (-0.080, -0.005, True),  # shown to drop, but not by more than the margin
    (-0.080, -0.021, False),  # the whole interval lies more than 0.02 below
])
def test_max_drop_fails_only_when_the_interval_lies_below_the_margin(
    low: float, high: float, passed: bool
) -> None:
    gates = Gates(minimum={}, max_drop={"pr_auc": 0.02})

    (result,) = request_gates(gates, GOOD, paired_comparison((low + high) / 2, low, high))

    assert result.passed is passed
    assert result.value == high and result.threshold == -0.02
    assert f"[{low:+.4f}, {high:+.4f}]" in result.detail


def test_a_point_drop_beyond_the_margin_inside_a_wide_interval_passes() -> None:
    # The old rule (point difference >= -margin) blocked this one: noise, not evidence.
    gates = Gates(minimum={}, max_drop={"auc_roc": 0.01})
    comparison = paired_comparison(-0.03, -0.08, 0.02, metric="auc_roc")

    (result,) = request_gates(gates, GOOD, comparison)

    assert result.passed


def test_unpaired_max_drop_can_only_compare_the_point_difference() -> None:
    gates = Gates(minimum={}, max_drop={"recall": 0.05, "precision": 0.01})
    champion = {"recall": 0.80, "precision": 0.80}

    recall, precision = request_gates(gates, GOOD, unpaired(GOOD.metrics, champion))

    assert recall.passed  # 0.778 is 0.022 below 0.80
    assert precision.passed and precision.evaluated  # 0.875 is above 0.80
    assert "unpaired, point difference only" in recall.detail
    (failed,) = request_gates(Gates(minimum={}, max_drop={"recall": 0.01}), GOOD,
                              unpaired(GOOD.metrics, champion))
    assert not failed.passed


def test_a_gate_without_a_champion_value_says_not_evaluated() -> None:
    gates = Gates(minimum={}, max_drop={"pr_auc": 0.01}, non_inferior={"pr_auc": 0.01},
                  better_than_champion=["pr_auc"])

    drop, non_inferior, better = request_gates(gates, GOOD,
                                               unpaired(GOOD.metrics, {"accuracy": 0.95}))

    for gate in (drop, non_inferior, better):
        assert gate.evaluated is False
        assert gate.value is None
        assert gate.detail.startswith("not evaluated")
    assert drop.passed  # blocks on evidence of harm: none
    assert not non_inferior.passed and not better.passed


@pytest.mark.parametrize(("low", "passed"), [(-0.019, True), (-0.021, False)])
def test_non_inferior_needs_the_whole_interval_above_minus_the_margin(
    low: float, passed: bool
) -> None:
    gates = Gates(minimum={}, max_drop={}, non_inferior={"pr_auc": 0.02})

    (result,) = request_gates(gates, GOOD, paired_comparison(0.0, low, 0.03))

    assert result.passed is passed
    assert result.value == low and result.kind == "non_inferior"


def test_non_inferior_fails_without_a_paired_comparison() -> None:
    gates = Gates(minimum={}, max_drop={}, non_inferior={"auc_roc": 0.05})

    (result,) = request_gates(gates, GOOD, unpaired(GOOD.metrics, {"auc_roc": 0.5}))

    assert not result.passed and "paired comparison" in result.detail


def test_better_than_champion_needs_the_interval_above_zero() -> None:
    gates = Gates(minimum={}, max_drop={}, better_than_champion=["pr_auc"])

    (better,) = request_gates(gates, GOOD, paired_comparison(0.05, 0.01, 0.09))
    (unsure,) = request_gates(gates, GOOD, paired_comparison(0.05, -0.01, 0.11))

    assert better.passed and better.value == 0.01
    assert not unsure.passed
    assert "[-0.0100, +0.1100]" in unsure.detail


def test_better_than_champion_fails_without_a_paired_comparison() -> None:
    gates = Gates(minimum={}, max_drop={}, better_than_champion=["auc_roc"])

    (result,) = request_gates(gates, GOOD, unpaired(GOOD.metrics, {"auc_roc": 0.5}))

    assert not result.passed and "paired comparison" in result.detail


def test_the_guard_passes_a_model_that_flags_and_ranks() -> None:
    result, _alerts = check(ONLY, GOOD, unpaired(GOOD.metrics, {}))

    assert result.kind == "guard" and result.passed
    assert "flags 16 records" in result.detail and "14 of 18 frauds" in result.detail


@pytest.mark.parametrize(("model", "words"), [
    (evaluation(tn=9_982, fp=0, fn=18, tp=0), "flags no record"),
    (evaluation(tn=0, fp=9_982, fn=0, tp=18, distinct=1), "the same score"),
])
def test_the_guard_fails_a_model_that_flags_nothing_or_scores_alike(
    model: Evaluation, words: str
) -> None:
    # No request can turn it off: even with no gates at all, the plan fails.
    result, _alerts = check(ONLY, model, unpaired(model.metrics, {}))

    assert not result.passed and words in result.detail


def test_the_guard_reads_the_requests_threshold() -> None:
    assert "threshold 0.30" in guard(GOOD, 0.3).detail


def test_power_notes_say_what_the_test_set_can_detect() -> None:
    gates = Gates(minimum={}, max_drop={"pr_auc": 0.02})
    comparison = paired_comparison(0.0, -0.05, 0.05, se=0.025)
    (drop,) = request_gates(gates, GOOD, comparison)
    detectable = detectable_difference(0.025)

    assert detectable == pytest.approx(0.07, abs=1e-3)
    assert drop.detectable == pytest.approx(detectable)
    note = power_note(drop)
    assert note is not None
    assert "detects is 0.070" in note and "truly worse by 0.090 or more" in note
    assert "margin 0.02 is below 0.070" in note

    wide = Gates(minimum={}, max_drop={"pr_auc": 0.2})
    (enough,) = request_gates(wide, GOOD, comparison)
    assert "is below" not in (power_note(enough) or "")


def test_power_note_of_non_inferiority_gives_the_equal_candidates_chance() -> None:
    gates = Gates(minimum={}, max_drop={}, non_inferior={"pr_auc": 0.02})

    (gate,) = request_gates(gates, GOOD, paired_comparison(0.0, -0.04, 0.04, se=0.02))

    note = power_note(gate)
    # P(lower bound > -0.02 | no difference) = P(Z > 1.96 - 1) = 17 %
    assert note is not None and "passes this gate 17% of the time" in note
    assert "too small to show non-inferiority" in note


def test_calling_everything_legit_is_flagged_although_accuracy_passes() -> None:
    lazy = evaluation(tn=9_982, fp=0, fn=18, tp=0)

    _, accuracy, _ = check(Gates(minimum={"accuracy": 0.9}, max_drop={}), lazy,
                        unpaired(lazy.metrics, {}))

    assert accuracy.passed
    assert accuracy_is_uninformative(lazy)
    assert not accuracy_is_uninformative(GOOD)


def test_a_model_worse_than_calling_everything_legit_is_flagged() -> None:
    noisy = evaluation(tn=9_900, fp=82, fn=10, tp=8)

    assert noisy.metrics["accuracy"] < noisy.majority_accuracy
    assert accuracy_is_uninformative(noisy)
