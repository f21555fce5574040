"""A model's scores on the test set: metrics (6.1), confusion matrix (6.2), curves (6.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.domain import ConfusionMatrix, Curve, Evaluation
from bot.errors import BotError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

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
    import numpy as np
    from sklearn import metrics

    labels, values = check_labels_and_scores(y_true, scores)
    flagged = values >= threshold
    if ranking is not None:
        _, values = check_labels_and_scores(labels, ranking)
    tp = int(np.count_nonzero(flagged & (labels == 1)))
    fp = int(np.count_nonzero(flagged)) - tp
    fn = int(np.count_nonzero(labels)) - tp
    tn = labels.size - tp - fp - fn
    fpr, tpr, _ = metrics.roc_curve(labels, values)
    precision, recall, _ = metrics.precision_recall_curve(labels, values)
    return Evaluation(
        metrics={
            "accuracy": (tp + tn) / labels.size,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn),
            "f1_score": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "auc_roc": float(metrics.auc(fpr, tpr)),
            # sklearn's average_precision_score, from the curve already computed
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


def check_labels_and_scores(
    y_true: npt.ArrayLike, scores: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Labels as 0/1 integers and finite scores of the same length, or a clear error."""
    import numpy as np

    labels = np.asarray(y_true)
    values = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != values.shape:
        raise BotError(f"{labels.shape} labels but {values.shape} scores")
    if not ((labels == 0) | (labels == 1)).all():  # np.isin sorts: far slower
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


def downsample(
    x: npt.ArrayLike, y: npt.ArrayLike, limit: int = CURVE_POINTS
) -> Curve:
    """At most ``limit`` points spread evenly along the curve's length, ends included.

    Even spacing along the length keeps the steep start of a ROC curve on imbalanced data,
    which even spacing along x or along the thresholds would flatten.
    """
    import numpy as np

    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.size > limit:
        length = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))))
        marks = np.linspace(0.0, length[-1], limit)[:-1]
        keep = np.unique(np.append(np.searchsorted(length, marks), xs.size - 1))
        xs, ys = xs[keep], ys[keep]
    return Curve(x=tuple(round(float(v), 6) for v in xs), y=tuple(round(float(v), 6) for v in ys))
