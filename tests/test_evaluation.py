"""Metrics (6.1), confusion matrix (6.2) and curves (6.3) of a model's test scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from bot.core.evaluation import downsample, evaluate
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
