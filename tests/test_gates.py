"""The production gates (6.5) and the warning about accuracy on imbalanced data."""

from __future__ import annotations

from bot.core.comparison import unpaired
from bot.core.domain import Comparison, ConfusionMatrix, Curve, Evaluation, MetricComparison
from bot.core.gates import accuracy_is_uninformative, check
from bot.core.request import Gates

CURVE = Curve(x=(0.0, 1.0), y=(0.0, 1.0))


def evaluation(tn: int, fp: int, fn: int, tp: int, **metrics: float) -> Evaluation:
    rows = tn + fp + fn + tp
    values = {"accuracy": (tn + tp) / rows, "precision": tp / max(tp + fp, 1),
              "recall": tp / max(tp + fn, 1), "f1_score": 0.0, "auc_roc": 0.9, "pr_auc": 0.5}
    values.update(metrics)
    return Evaluation(metrics=values, confusion_matrix=ConfusionMatrix(tn, fp, fn, tp),
                      roc=CURVE, pr=CURVE, positives=tp + fn, rows=rows,
                      majority_accuracy=(tn + fp) / rows)


GOOD = evaluation(tn=9_980, fp=2, fn=4, tp=14)


def paired_comparison(difference: float, low: float, high: float) -> Comparison:
    compared = MetricComparison(current=0.9, baseline=0.9 - difference, difference=difference,
                                percent_change=0.0, improved=difference > 0,
                                ci_low=low, ci_high=high)
    return Comparison(paired=True, method="paired", metrics={"pr_auc": compared})


def test_the_seeds_accuracy_gate_is_the_default() -> None:
    (result,) = check(Gates(), GOOD, unpaired(GOOD.metrics, {}))

    assert result.name == "accuracy >= 0.90"
    assert result.threshold == 0.9
    assert result.value == GOOD.metrics["accuracy"]
    assert result.passed


def test_a_minimum_not_reached_fails() -> None:
    gates = Gates(minimum={"recall": 0.8, "precision": 0.925})

    recall, precision = check(gates, GOOD, unpaired(GOOD.metrics, {}))

    assert recall.name == "recall >= 0.80" and not recall.passed
    assert precision.name == "precision >= 0.925" and not precision.passed
    assert "0.7778" in recall.detail


def test_max_drop_against_the_champion() -> None:
    gates = Gates(minimum={}, max_drop={"recall": 0.05, "precision": 0.01})
    champion = {"recall": 0.80, "precision": 0.80}

    recall, precision = check(gates, GOOD, unpaired(GOOD.metrics, champion))

    assert recall.passed  # 0.778 is 0.022 below 0.80, within 0.05
    assert recall.value is not None and abs(recall.value - (14 / 18 - 0.8)) < 1e-12
    assert recall.threshold == -0.05
    assert precision.passed  # 0.875 is above 0.80
    assert "drops at most 0.05 below the champion" in recall.name

    (failed,) = check(Gates(minimum={}, max_drop={"recall": 0.01}), GOOD,
                      unpaired(GOOD.metrics, champion))
    assert not failed.passed


def test_max_drop_passes_when_the_champion_has_no_value() -> None:
    gates = Gates(minimum={}, max_drop={"pr_auc": 0.01})

    (result,) = check(gates, GOOD, unpaired(GOOD.metrics, {"accuracy": 0.95}))

    assert result.passed
    assert result.value is None
    assert result.detail == "no champion value"


def test_better_than_champion_needs_the_interval_above_zero() -> None:
    gates = Gates(minimum={}, better_than_champion=["pr_auc"])

    (better,) = check(gates, GOOD, paired_comparison(0.05, 0.01, 0.09))
    (unsure,) = check(gates, GOOD, paired_comparison(0.05, -0.01, 0.11))

    assert better.passed and better.value == 0.01 and better.threshold == 0.0
    assert not unsure.passed
    assert "[-0.0100, +0.1100]" in unsure.detail


def test_better_than_champion_fails_without_a_paired_comparison() -> None:
    gates = Gates(minimum={}, better_than_champion=["auc_roc"])

    (result,) = check(gates, GOOD, unpaired(GOOD.metrics, {"auc_roc": 0.5}))

    assert not result.passed
    assert "paired comparison" in result.detail


def test_calling_everything_legit_is_flagged_although_accuracy_passes() -> None:
    lazy = evaluation(tn=9_982, fp=0, fn=18, tp=0)

    (accuracy,) = check(Gates(), lazy, unpaired(lazy.metrics, {}))

    assert accuracy.passed
    assert accuracy_is_uninformative(lazy)
    assert not accuracy_is_uninformative(GOOD)


def test_a_model_worse_than_calling_everything_legit_is_flagged() -> None:
    noisy = evaluation(tn=9_900, fp=82, fn=10, tp=8)

    assert noisy.metrics["accuracy"] < noisy.majority_accuracy
    assert accuracy_is_uninformative(noisy)
