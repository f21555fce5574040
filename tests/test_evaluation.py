"""Metrics (6.1), confusion matrix (6.2) and curves (6.3) of a model's test scores."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn import metrics as sk

from bot.core.evaluation import (
    auc,
    check_labels_and_scores,
    downsample,
    evaluate,
    precision_recall_curve,
    roc_curve,
)
from bot.core.request import METRICS
from bot.errors import BotError


def imbalanced(rows: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.01).astype(int)
    scores = np.clip(rng.normal(0.1, 0.1, rows) + labels * rng.uniform(0, 0.9, rows), 0, 1)
    return labels, np.round(scores, 3)  # rounding makes ties, as tree models do


def test_a_hand_worked_example() -> None:
    result = evaluate([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8], threshold=0.5)

    assert result.metrics == {
        "accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1_score": 0.5,
        "auc_roc": 0.75, "pr_auc": pytest.approx((1 + 2 / 3) / 2),
    }
    cm = result.confusion_matrix
    assert (cm.tn, cm.fp, cm.fn, cm.tp) == (1, 1, 1, 1)
    assert (result.rows, result.positives, result.majority_accuracy) == (4, 2, 0.5)


def test_metrics_are_sklearns() -> None:
    labels, scores = imbalanced()
    predicted = scores >= 0.3

    result = evaluate(labels, scores, threshold=0.3)

    assert list(result.metrics) == list(METRICS)
    assert result.metrics["accuracy"] == sk.accuracy_score(labels, predicted)
    assert result.metrics["precision"] == sk.precision_score(labels, predicted)
    assert result.metrics["recall"] == sk.recall_score(labels, predicted)
    assert result.metrics["f1_score"] == sk.f1_score(labels, predicted)
    assert result.metrics["auc_roc"] == sk.roc_auc_score(labels, scores)
    assert result.metrics["pr_auc"] == sk.average_precision_score(labels, scores)
    tn, fp, fn, tp = sk.confusion_matrix(labels, predicted).ravel()
    cm = result.confusion_matrix
    assert (cm.tn, cm.fp, cm.fn, cm.tp) == (tn, fp, fn, tp)
    assert result.majority_accuracy == pytest.approx(1 - labels.mean())


def test_a_score_at_the_threshold_is_fraud() -> None:
    result = evaluate([0, 1, 0, 1], [0.2, 0.5, 0.49, 0.7], threshold=0.5)

    assert result.confusion_matrix.tp == 2
    assert result.confusion_matrix.fp == 0


def test_a_model_that_flags_nothing_has_zero_precision_not_an_error() -> None:
    result = evaluate([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], threshold=0.9)

    assert result.metrics["precision"] == 0.0
    assert result.metrics["recall"] == 0.0
    assert result.metrics["accuracy"] == result.majority_accuracy == 0.75


def test_curves_have_at_most_50_points_and_keep_their_ends() -> None:
    labels, scores = imbalanced(rows=50_000)
    fpr, _, _ = sk.roc_curve(labels, scores)
    assert len(fpr) > 50

    result = evaluate(labels, scores)

    assert 10 <= len(result.roc.x) == len(result.roc.y) <= 50
    assert (result.roc.x[0], result.roc.y[0]) == (0.0, 0.0)
    assert (result.roc.x[-1], result.roc.y[-1]) == (1.0, 1.0)
    assert list(result.roc.x) == sorted(result.roc.x)
    assert len(result.pr.x) <= 50
    assert result.pr.x[0] == 0.0 and result.pr.x[-1] == 1.0
    assert result.pr.y[-1] == pytest.approx(labels.mean(), abs=1e-6)
    assert list(result.pr.x) == sorted(result.pr.x)


def test_downsampled_points_lie_on_the_curve_spread_along_it() -> None:
    x = np.concatenate([np.linspace(0, 0.01, 500), np.linspace(0.01, 1, 500)])
    y = np.concatenate([np.linspace(0, 0.9, 500), np.linspace(0.9, 1, 500)])

    curve = downsample(x, y, limit=20)

    assert len(curve.x) <= 20
    assert curve.x[0] == 0.0 and curve.x[-1] == 1.0
    assert np.allclose(curve.y, np.interp(curve.x, x, y), atol=1e-3)  # points kept to 6 places
    # the steep start holds about as many points as the long flat tail
    steep = sum(1 for value in curve.x if value <= 0.01)
    assert 6 <= steep <= 14


def test_test_data_with_one_class_or_other_labels_is_a_clear_error() -> None:
    with pytest.raises(BotError, match="needs both classes"):
        evaluate([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(BotError, match="0 \\(legit\\) and 1 \\(fraud\\)"):
        evaluate([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(BotError, match="labels but"):
        evaluate([0, 1], [0.1, 0.2, 0.3])


# -- ROC and PR curves without scikit-learn ---------------------------------------------
# The bot computes them itself; the tests below check them against definitions counted by
# brute force (no scikit-learn), then bit for bit against scikit-learn (a dev dependency).

SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]


def small_with_ties(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A few dozen 0/1 labels and scores with many ties (a few distinct values), both classes."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(5, 60))
    labels = (rng.random(rows) < rng.uniform(0.1, 0.9)).astype(int)
    labels[rng.choice(rows, 2, replace=False)] = [0, 1]
    levels = int(rng.integers(2, 12))
    scores = rng.integers(0, levels, rows) / levels + labels * rng.choice([0.0, 0.1, 0.3], rows)
    return check_labels_and_scores(labels, np.round(scores, 2))


def share_at_or_above(scores: np.ndarray, threshold: float) -> float:
    return sum(1 for s in scores if s >= threshold) / len(scores)


@pytest.mark.parametrize("seed", SEEDS)
def test_each_roc_point_is_the_share_of_each_class_scored_at_or_above_its_threshold(
    seed: int,
) -> None:
    labels, scores = small_with_ties(seed)
    positives, negatives = scores[labels == 1], scores[labels == 0]

    fpr, tpr, thresholds = roc_curve(labels, scores)

    assert len(fpr) == len(tpr) == len(thresholds) >= 2
    assert (fpr[0], tpr[0], thresholds[0]) == (0.0, 0.0, np.inf)
    assert (fpr[-1], tpr[-1], thresholds[-1]) == (1.0, 1.0, scores.min())
    assert set(thresholds[1:]) <= set(scores)
    assert all(np.diff(thresholds) < 0)
    for x, y, threshold in zip(fpr[1:], tpr[1:], thresholds[1:], strict=True):
        assert x == share_at_or_above(negatives, threshold)
        assert y == share_at_or_above(positives, threshold)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_roc_curve_drops_only_points_on_a_line_between_the_points_it_keeps(
    seed: int,
) -> None:
    labels, scores = small_with_ties(seed)
    kept = list(roc_curve(labels, scores)[2][1:])

    def counts(threshold: float) -> tuple[int, int]:
        return (int(np.count_nonzero(scores[labels == 0] >= threshold)),
                int(np.count_nonzero(scores[labels == 1] >= threshold)))

    for threshold in sorted(set(scores) - set(kept), reverse=True):
        above = min((t for t in kept if t > threshold), default=np.inf)
        below = max(t for t in kept if t < threshold)
        (x0, y0), (x, y), (x1, y1) = counts(above), counts(threshold), counts(below)
        assert (x - x0) * (y1 - y0) == (y - y0) * (x1 - x0)  # collinear, in whole counts


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_is_the_chance_a_fraud_outscores_a_legit_row_ties_counting_half(
    seed: int,
) -> None:
    labels, scores = small_with_ties(seed)
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    mann_whitney = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)

    assert auc(*roc_curve(labels, scores)[:2]) == pytest.approx(mann_whitney, rel=1e-12)
    assert evaluate(labels, scores).metrics["auc_roc"] == pytest.approx(mann_whitney, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_pr_curve_has_every_distinct_score_as_threshold_then_recall_0_precision_1(
    seed: int,
) -> None:
    labels, scores = small_with_ties(seed)
    distinct = sorted(set(scores))
    flagged = [scores >= t for t in distinct]
    positives = int(labels.sum())

    precision, recall, thresholds = precision_recall_curve(labels, scores)

    assert list(thresholds) == distinct
    assert list(precision) == [int(labels[f].sum()) / int(f.sum()) for f in flagged] + [1.0]
    assert list(recall) == [int(labels[f].sum()) / positives for f in flagged] + [0.0]


@pytest.mark.parametrize("seed", SEEDS)
def test_pr_auc_is_average_precision_summed_over_distinct_thresholds(seed: int) -> None:
    labels, scores = small_with_ties(seed)
    positives = int(labels.sum())
    average_precision, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        flagged = scores >= threshold
        true_positives = int(labels[flagged].sum())
        recall = true_positives / positives
        average_precision += (recall - previous_recall) * true_positives / int(flagged.sum())
        previous_recall = recall

    assert evaluate(labels, scores).metrics["pr_auc"] == pytest.approx(
        average_precision, rel=1e-12)


def test_auc_is_the_trapezoids_area_in_either_direction() -> None:
    rng = np.random.default_rng(0)
    x = np.sort(rng.random(30))
    y = rng.random(30)
    trapezoids = sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(29))

    assert auc(x, y) == pytest.approx(trapezoids, rel=1e-12)
    assert auc(x[::-1], y[::-1]) == pytest.approx(trapezoids, rel=1e-12)
    with pytest.raises(ValueError, match="neither increasing nor decreasing"):
        auc(np.array([0.0, 0.5, 0.2]), np.array([0.0, 1.0, 1.0]))


def test_the_runtime_needs_no_scikit_learn(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib
    from pathlib import Path

    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn", None)

    result = evaluate([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.35])

    assert result.metrics["auc_roc"] == 0.75
    project = tomllib.loads(
        (Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("scikit-learn")]
    assert [d for d in project["optional-dependencies"]["dev"] if d.startswith("scikit-learn")]


def with_ties(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of random sizes, balance and tie patterns, signed zeros among them."""
    rng = np.random.default_rng(seed)
    rows = int(rng.choice([2, 3, 7, 40, 500, 5_000]))
    labels = (rng.random(rows) < rng.choice([0.01, 0.2, 0.5, 0.95])).astype(int)
    labels[rng.choice(rows, 2, replace=False)] = [0, 1]
    scores = [rng.random(rows), np.round(rng.random(rows), 1), np.round(rng.normal(0, 1, rows), 2),
              rng.integers(0, 3, rows).astype(float), np.zeros(rows),
              np.round(rng.normal(0, 1, rows))][seed % 6]  # the last: many 0.0 and -0.0
    return check_labels_and_scores(labels, scores)


def bits(array: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    return array.dtype.str, array.shape, array.tobytes()


@pytest.mark.parametrize("seed", range(48))
def test_curves_and_areas_are_sklearns_bit_for_bit(seed: int) -> None:
    labels, scores = with_ties(seed)

    for ours, theirs in ((roc_curve(labels, scores), sk.roc_curve(labels, scores)),
                         (precision_recall_curve(labels, scores),
                          sk.precision_recall_curve(labels, scores))):
        assert [bits(a) for a in ours[:2]] == [bits(a) for a in theirs[:2]]
        # equal values; the sign of a zero threshold (0.0 tied with -0.0) is the last tied
        # row's, and scikit-learn releases differ in the order of tied rows
        assert ours[2].dtype == theirs[2].dtype and list(ours[2]) == list(theirs[2])
    fpr, tpr, _ = sk.roc_curve(labels, scores)
    precision, recall, _ = sk.precision_recall_curve(labels, scores)
    assert auc(fpr, tpr).hex() == sk.auc(fpr, tpr).hex()
    assert auc(recall, precision).hex() == sk.auc(recall, precision).hex()
    result = evaluate(labels, scores).metrics
    assert result["auc_roc"].hex() == sk.roc_auc_score(labels, scores).hex()
    assert result["pr_auc"] == sk.average_precision_score(labels, scores)
