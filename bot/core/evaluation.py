"""A model's scores on the test set: metrics, confusion matrix, curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bot.core.domain import ConfusionMatrix, Curve, Evaluation
from bot.errors import BotError

#: Most points of a curve kept for the comment's charts and the PNGs.
CURVE_POINTS = 50


def evaluate(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, threshold: float = 0.5,
    ranking: npt.ArrayLike | None = None,
) -> Evaluation:
    """Score predictions against the truth; a score at or above ``threshold`` means fraud.

    ``ranking`` (the model's margins) orders the rows for ROC and PR AUC and the curves;
    without it, ``scores`` do.
    """
    labels, values = check_labels_and_scores(y_true, scores)
    flagged = values >= threshold
    if ranking is not None:
        _, values = check_labels_and_scores(labels, ranking)
    tp = int(np.count_nonzero(flagged & (labels == 1)))
    fp = int(np.count_nonzero(flagged)) - tp
    fn = int(np.count_nonzero(labels)) - tp
    tn = labels.size - tp - fp - fn
    fpr, tpr, _ = roc_curve(labels, values)
    precision, recall, _ = precision_recall_curve(labels, values)
    return Evaluation(
        metrics={
            "accuracy": (tp + tn) / labels.size,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn),
            "f1_score": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "auc_roc": auc(fpr, tpr),
            # average precision (scikit-learn's average_precision_score), from the curve
            "pr_auc": float(-np.sum(np.diff(recall) * precision[:-1])),
        },
        confusion_matrix=ConfusionMatrix(tn=tn, fp=fp, fn=fn, tp=tp),
        roc=downsample(fpr, tpr),
        pr=downsample(recall[::-1], precision[::-1]),
        positives=tp + fn,
        rows=labels.size,
        majority_accuracy=(tn + fp) / labels.size,
        distinct_scores=int(np.unique(values).size),
    )


def only_zero_and_one(labels: npt.NDArray[Any]) -> bool:
    """Whether every label is 0 or 1 (by comparison: ``np.isin`` sorts, far slower)."""
    return bool(((labels == 0) | (labels == 1)).all())


def check_labels_and_scores(
    y_true: npt.ArrayLike, scores: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Labels as 0/1 integers and finite scores of the same length, or a clear error."""
    labels = np.asarray(y_true)
    values = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != values.shape:
        raise BotError(f"{labels.shape} labels but {values.shape} scores")
    if not only_zero_and_one(labels):
        raise BotError("the target column must hold 0 (legit) and 1 (fraud) only")
    positives = int(np.count_nonzero(labels))
    if positives in (0, labels.size):
        raise BotError(
            f"the test data has {positives} frauds in {labels.size} rows: "
            "it needs both classes to evaluate a model"
        )
    if not np.isfinite(values).all():
        raise BotError("the model gave non-finite scores")
    return labels.astype(np.int64), values


# The curves and the area below are scikit-learn's defaults for 0/1 labels without sample
# weights, bit for bit (tests/test_evaluation.py checks it), so the bot's runtime needs no
# scikit-learn. ``labels`` and ``values`` are as check_labels_and_scores returns them: both
# classes present, finite scores.


def _counts_at_thresholds(
    labels: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """False and true positives flagged at each distinct score, highest score first.

    Element i counts the rows scored at or above ``thresholds[i]``. Rows with tied scores
    fall on the same side of every threshold, so their order does not change the counts; it
    picks the sign of a threshold only where 0.0 ties with -0.0. The sort is stable and
    descending, as recent scikit-learn's (older releases reversed the ties).
    """
    order = np.argsort(-values, kind="stable")
    ordered = values[order]
    # the last row of each run of equal scores, and the last row of all
    ends = np.append(np.flatnonzero(np.diff(ordered)), ordered.size - 1)
    tps = np.cumsum(labels[order], dtype=np.float64)[ends]
    fps = 1 + ends.astype(np.float64) - tps
    return fps, tps, ordered[ends]


def roc_curve(
    labels: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """False and true positive rates at decreasing thresholds, from (0, 0) at threshold inf.

    ``sklearn.metrics.roc_curve(labels, values)``: points collinear with both neighbours
    are dropped (drop_intermediate=True).
    """
    fps, tps, thresholds = _counts_at_thresholds(labels, values)
    if fps.size > 2:
        corner = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.flatnonzero(np.concatenate(([True], corner, [True])))
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps = np.concatenate(([0.0], fps))
    tps = np.concatenate(([0.0], tps))
    thresholds = np.concatenate(([np.inf], thresholds))
    return fps / fps[-1], tps / tps[-1], thresholds


def precision_recall_curve(
    labels: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Precision and recall at increasing thresholds, then the point (recall 0, precision 1).

    ``sklearn.metrics.precision_recall_curve(labels, values)``: every distinct score is a
    threshold, those below the lowest positive's too (full recall, falling precision).
    """
    fps, tps, thresholds = _counts_at_thresholds(labels, values)
    precision = tps / (tps + fps)  # every threshold flags at least one row
    recall = tps / tps[-1]
    return (np.concatenate((precision[::-1], [1.0])), np.concatenate((recall[::-1], [0.0])),
            thresholds[::-1])


def auc(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """Area under the curve through the points, by the trapezoidal rule (``sklearn.metrics.auc``).

    ``x`` must be monotonic, increasing or decreasing.
    """
    dx = np.diff(x)
    direction = 1.0
    if np.any(dx < 0):
        if not np.all(dx <= 0):
            raise ValueError(f"x is neither increasing nor decreasing: {x}")
        direction = -1.0
    return float(direction * np.sum(dx * (y[1:] + y[:-1]) / 2.0))


def downsample(
    x: npt.ArrayLike, y: npt.ArrayLike, limit: int = CURVE_POINTS
) -> Curve:
    """At most ``limit`` points spread evenly along the curve's length, ends included.

    Even spacing along the length keeps the steep start of a ROC curve on imbalanced data,
    which even spacing along x or along the thresholds would flatten.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.size > limit:
        length = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))))
        marks = np.linspace(0.0, length[-1], limit)[:-1]
        keep = np.unique(np.append(np.searchsorted(length, marks), xs.size - 1))
        xs, ys = xs[keep], ys[keep]
    return Curve(x=tuple(round(float(v), 6) for v in xs), y=tuple(round(float(v), 6) for v in ys))
