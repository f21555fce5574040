"""Candidate versus champion: paired on the same test rows when possible, else unpaired.

The paired comparison resamples the test rows with replacement, positives and negatives
separately (so every resample keeps the test set's fraud count), the same rows for both
models, and reports the 95 % percentile interval of each metric's difference. With 0.17 %
frauds a test set holds only about a hundred of them, so a difference of a point or two is
often noise; the interval says whether it is.

Resampling does not copy rows. Every metric here depends on a negative only through where
its score falls among the positives' distinct scores and the threshold, for each model. The
negatives are grouped into those (joint) cells, and drawing n negatives with replacement is
then one multinomial draw of cell counts; the positives, a hundred or so, get multinomial
weights. A thousand resamples of 57,000 rows take a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.domain import Comparison, MetricComparison, Verdict
from bot.core.evaluation import check_labels_and_scores
from bot.core.request import METRICS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]

#: The seed notebook's production baseline, used while nothing is in production.
SEED_BASELINE: dict[str, float] = {
    "accuracy": 0.952,
    "precision": 0.89,
    "recall": 0.85,
    "f1_score": 0.87,
    "auc_roc": 0.94,
}

_Z_95 = 1.959963984540054  # two-sided 95 %
_Z_80 = 0.8416212335729143  # 80 % power
_FEWEST_PER_CLASS = 2  # rows of each class a resampling interval needs
_BLOCK_VALUES = 2_000_000  # the most values one array of a block of resamples holds


def paired(
    y_true: npt.ArrayLike,
    candidate_scores: npt.ArrayLike,
    champion_scores: npt.ArrayLike,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    ranking: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> Comparison:
    """Compare two models' scores on the same rows, with 95 % intervals of each difference.

    Intervals come from a paired, class-stratified bootstrap of ``n_boot`` resamples, except
    for ``auc_roc``, whose interval and p-value come from DeLong's test, so they agree. Each
    metric's verdict says where its interval lies (``verdict``). ``ranking`` (both models'
    margins) orders the rows for the AUCs; the scores decide the threshold metrics.
    """
    import numpy as np

    labels, candidate = check_labels_and_scores(y_true, candidate_scores)
    _, champion = check_labels_and_scores(y_true, champion_scores)
    flagged = (candidate >= threshold, champion >= threshold)
    if ranking is not None:
        candidate = check_labels_and_scores(labels, ranking[0])[1]
        champion = check_labels_and_scores(labels, ranking[1])[1]
    cells = _Cells.build(labels, (candidate, champion), threshold, flagged)
    point = [cells.metrics(k, cells.positive_weights[None, :], cells.counts[None, :])
             for k in (0, 1)]

    intervals: dict[str, tuple[float, float]] = {}
    errors: dict[str, float] = {}
    steps = _steps(labels, flagged)
    n_pos, n_neg = cells.positive_weights.size, int(cells.counts.sum())
    # With a single fraud every resample holds that same fraud: no interval can be honest.
    if n_boot > 0 and n_pos >= _FEWEST_PER_CLASS and n_neg >= _FEWEST_PER_CLASS:
        rng = np.random.default_rng(seed)
        differences: dict[str, list[FloatArray]] = {name: [] for name in METRICS}
        # Resamples in blocks, so memory stays small when there are many cells.
        widest = max(cells.counts.size, n_pos, *(view.positions for view in cells.models))
        block = max(1, _BLOCK_VALUES // widest)
        for start in range(0, n_boot, block):
            size = min(block, n_boot - start)
            weights = rng.multinomial(n_pos, np.full(n_pos, 1.0 / n_pos), size=size)
            counts = rng.multinomial(n_neg, cells.counts / n_neg, size=size)
            candidate_metrics, champion_metrics = (cells.metrics(k, weights, counts)
                                                   for k in (0, 1))
            for name in METRICS:
                differences[name].append(candidate_metrics[name] - champion_metrics[name])
        for name in METRICS:
            drawn = np.concatenate(differences[name])
            low, high = np.percentile(drawn, [2.5, 97.5])
            step = steps.get(name, 0.0)
            # Rounded: a difference of whole records minus a step is exactly 0, not 1e-17.
            # (+ 0.0 turns -0.0 into 0.0.)
            intervals[name] = (round(float(low) - step, 12) + 0.0,
                               round(float(high) + step, 12) + 0.0)
            errors[name] = float(np.std(drawn, ddof=1)) if drawn.size > 1 else 0.0

    auc_candidate, auc_champion, variance = delong(labels, candidate, champion)
    difference = auc_candidate - auc_champion
    p_value: float | None = None
    if math.isfinite(variance):
        spread = _Z_95 * math.sqrt(variance)
        intervals["auc_roc"] = (difference - spread, difference + spread)
        errors["auc_roc"] = math.sqrt(variance)
        p_value = math.erfc(abs(difference) / math.sqrt(2 * variance)) if variance > 0 else 1.0

    result = {}
    for name in METRICS:
        low_high = intervals.get(name)
        se = errors.get(name) if low_high else None
        result[name] = _compare(
            float(point[0][name][0]), float(point[1][name][0]),
            ci=low_high, p_value=p_value if name == "auc_roc" else None, se=se,
            # The interval is widened by the step, so the step adds to what it can detect.
            detectable=None if se is None else (_Z_95 + _Z_80) * se + steps.get(name, 0.0),
        )
    method = (f"paired, class-stratified bootstrap of the test rows ({n_boot} resamples), "
              "threshold metrics' intervals widened by one record's step; "
              "DeLong's test for auc_roc")
    if not intervals:
        method = (f"paired; no intervals: the test set holds {n_pos} fraud(s) and {n_neg} "
                  "legit rows, and intervals need at least 2 of each")
    return Comparison(paired=True, method=method, metrics=result)


def _steps(labels: IntArray, flagged: tuple[npt.NDArray[np.bool_], ...]) -> dict[str, float]:
    """How far one record's decision moves each threshold metric: a continuity correction.

    A threshold metric's difference moves in whole records: recall by 1/frauds. With a
    handful of records decided differently the percentile interval is too short: 5 frauds
    caught by the candidate only and none by the champion give an interval above 0,
    although McNemar's exact test gives p = 0.0625. Widening each end by one step, as
    McNemar's continuity correction does, keeps a few records from making a verdict.
    """
    truth = labels == 1
    n, frauds = labels.size, int(truth.sum())
    tp = [int((f & truth).sum()) for f in flagged]
    called = [int(f.sum()) for f in flagged]
    return {
        "accuracy": 1.0 / n,
        "recall": 1.0 / frauds,
        "precision": 1.0 / (min(called) + 1),
        "f1_score": 2.0 / (min(t + c for t, c in zip(tp, called, strict=True)) + frauds),
    }


def unpaired(current: dict[str, float], baseline: dict[str, float]) -> Comparison:
    """Point values against the champion's recorded metrics, for metrics both have.

    Without the champion's scores on the same rows there is no interval, so no verdict:
    every metric is "not tested".
    """
    names = [n for n in METRICS if n in current and n in baseline]
    names += [n for n in current if n in baseline and n not in names]
    return Comparison(
        paired=False,
        method="unpaired: against the champion's recorded metrics, no intervals, not tested",
        metrics={n: _compare(float(current[n]), float(baseline[n])) for n in names},
    )


def delong(
    labels: npt.ArrayLike, scores_a: npt.ArrayLike, scores_b: npt.ArrayLike
) -> tuple[float, float, float]:
    """Both ROC AUCs and the variance of their difference (DeLong 1988).

    Each positive's component is the share of negatives it outscores (ties half), each
    negative's the share of positives that outscore it; the AUC is the positives' mean and
    the variance comes from both components' covariances. The positives (a few hundred) are
    kept; the negatives are visited in blocks and only sums of their components kept, so
    memory stays flat however many test rows there are.

    The variance is NaN with fewer than two rows of a class: it cannot be estimated.
    """
    import numpy as np

    labels_ = np.asarray(labels)
    scores = [np.asarray(scores_a), np.asarray(scores_b)]
    truth = labels_ == 1
    positives = [np.asarray(s[truth], dtype=np.float64) for s in scores]
    m = positives[0].size
    n = labels_.size - m
    ordered = [np.sort(p) for p in positives]
    below = [np.zeros(m, dtype=np.float64) for _ in scores]  # per positive: negatives under it
    sums = np.zeros(2)
    products = np.zeros((2, 2))
    for start in range(0, labels_.size, _DELONG_BLOCK):
        negative = labels_[start:start + _DELONG_BLOCK] != 1
        components = []
        for k, model in enumerate(scores):
            values = np.asarray(model[start:start + _DELONG_BLOCK][negative], dtype=np.float64)
            # This block's negatives under (and tied with) each positive.
            under = np.sort(values)
            below[k] += (np.searchsorted(under, positives[k], side="left")
                         + np.searchsorted(under, positives[k], side="right")) / 2.0
            left = np.searchsorted(ordered[k], values, side="left")
            right = np.searchsorted(ordered[k], values, side="right")
            components.append((m - (left + right) / 2.0) / max(m, 1))
        stacked = np.vstack(components)
        sums += stacked.sum(axis=1)
        products += stacked @ stacked.T
    v_pos = np.vstack(below) / max(n, 1)
    aucs = v_pos.mean(axis=1) if m else np.full(2, math.nan)
    if m < 2 or n < 2:
        return float(aucs[0]), float(aucs[1]), math.nan
    negatives_cov = (products - np.outer(sums, sums) / n) / (n - 1)
    covariance = np.cov(v_pos) / m + negatives_cov / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    return float(aucs[0]), float(aucs[1]), max(float(variance), 0.0)


#: Test rows visited at a time by ``delong``.
_DELONG_BLOCK = 1 << 16


@dataclass(frozen=True)
class _ModelCells:
    """One model's view of the cells.

    The positives' distinct scores u_1 < ... < u_m cut the score line into 2m+1 positions
    (below u_1, at u_1, between, at u_2, ...); a negative's position and whether it is
    flagged (score >= threshold) decide its share in every metric.
    """

    positions: int  # 2m + 1
    positive_order: IntArray  # positives sorted by distinct score
    score_starts: IntArray  # where each distinct score starts in that order
    positive_flagged: FloatArray  # per positive: 1.0 if flagged
    cell_order: IntArray  # cells sorted by position
    position_starts: IntArray  # where each occupied position starts in that order
    occupied: IntArray  # the occupied positions
    cell_flagged: FloatArray  # per cell: 1.0 if flagged


@dataclass(frozen=True)
class _Cells:
    """The test rows reduced to what the metrics need: resampling without copying rows."""

    positive_weights: FloatArray  # one per positive, 1.0 each
    counts: FloatArray  # negatives per joint cell of both models
    negative_cell: IntArray  # the cell of each negative, in the data's order
    models: tuple[_ModelCells, ...]

    @classmethod
    def build(
        cls, labels: IntArray, models: tuple[FloatArray, ...], threshold: float,
        flagged: tuple[npt.NDArray[np.bool_], ...] | None = None,
    ) -> _Cells:
        """``models`` rank the rows; ``flagged`` (default: score >= threshold) decides."""
        import numpy as np

        truth = labels == 1
        decided = flagged or tuple(scores >= threshold for scores in models)
        keys = np.zeros(int(np.count_nonzero(~truth)), dtype=np.int64)
        sizes = []
        for scores, flags in zip(models, decided, strict=True):
            distinct = np.unique(scores[truth])
            negatives = scores[~truth]
            left = np.searchsorted(distinct, negatives, side="left")
            tied = np.searchsorted(distinct, negatives, side="right") > left
            sizes.append(2 * (2 * distinct.size + 1))
            keys = keys * sizes[-1] + 2 * (2 * left + tied) + flags[~truth]
        joint, negative_cell, counts = np.unique(keys, return_inverse=True, return_counts=True)

        views = []
        for k, scores in enumerate(models):
            distinct, group = np.unique(scores[truth], return_inverse=True)
            key = (joint // math.prod(sizes[k + 1:])) % sizes[k]
            position = key // 2
            cell_order = np.argsort(position, kind="stable")
            starts = _starts(position[cell_order])
            positive_order = np.argsort(group, kind="stable")
            views.append(_ModelCells(
                positions=2 * distinct.size + 1,
                positive_order=positive_order,
                score_starts=_starts(group[positive_order]),
                positive_flagged=decided[k][truth].astype(np.float64),
                cell_order=cell_order,
                position_starts=starts,
                occupied=position[cell_order][starts],
                cell_flagged=(key % 2).astype(np.float64),
            ))
        return cls(
            positive_weights=np.ones(int(np.count_nonzero(truth)), dtype=np.float64),
            counts=counts.astype(np.float64),
            negative_cell=negative_cell,
            models=tuple(views),
        )

    def metrics(
        self, k: int, weights: npt.ArrayLike, counts: npt.ArrayLike
    ) -> dict[str, FloatArray]:
        """Every metric of model ``k`` for each row of positive weights and negative counts."""
        import numpy as np

        view = self.models[k]
        w = np.asarray(weights, dtype=np.float64)
        c = np.asarray(counts, dtype=np.float64)
        n_pos, n_neg = float(self.positive_weights.size), float(self.counts.sum())

        tp = w @ view.positive_flagged
        fp = c @ view.cell_flagged
        fn, tn = n_pos - tp, n_neg - fp
        flagged = tp + fp
        f1_denominator = 2 * tp + fp + fn
        accuracy = (tp + tn) / (n_pos + n_neg)
        precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
        recall = tp / n_pos
        f1 = np.divide(2 * tp, f1_denominator, out=np.zeros_like(tp), where=f1_denominator > 0)

        # Negatives per position, then per distinct positive score: how many lie below, at it.
        at_position = np.zeros((c.shape[0], view.positions))
        at_position[:, view.occupied] = np.add.reduceat(
            c[:, view.cell_order], view.position_starts, axis=1)
        below = np.cumsum(at_position, axis=1) - at_position
        below_score, at_score = below[:, 1::2], at_position[:, 1::2]
        weight_at_score = np.add.reduceat(w[:, view.positive_order], view.score_starts, axis=1)
        auc_roc = (weight_at_score * (below_score + 0.5 * at_score)).sum(axis=1) / (n_pos * n_neg)

        # Average precision: precision at each distinct positive score, weighted by its recall.
        tp_above = np.cumsum(weight_at_score[:, ::-1], axis=1)[:, ::-1]
        called = tp_above + (n_neg - below_score)
        precision_at = np.divide(tp_above, called, out=np.zeros_like(called), where=called > 0)
        pr_auc = (weight_at_score * precision_at).sum(axis=1) / n_pos
        return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1_score": f1,
                "auc_roc": auc_roc, "pr_auc": pr_auc}


def _starts(ordered: IntArray) -> IntArray:
    """Where each run of equal values starts in a sorted array."""
    import numpy as np

    return np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1)).astype(np.int64)


def verdict(ci: tuple[float, float] | None) -> Verdict:
    """Better when the 95 % interval of the difference lies above 0, worse when below,
    inconclusive when it holds 0; not tested without an interval."""
    if ci is None:
        return "not tested"
    low, high = ci
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "inconclusive"


def detectable_difference(se: float | None) -> float | None:
    """The smallest true difference a two-sided 5 % test detects with 80 % power: an
    interval of this test set excludes 0 for it four times in five. (``paired`` adds the
    threshold metrics' one-record step, by which their intervals are widened.)"""
    return None if se is None else (_Z_95 + _Z_80) * se


def _compare(
    current: float,
    baseline: float,
    ci: tuple[float, float] | None = None,
    p_value: float | None = None,
    se: float | None = None,
    detectable: float | None = None,
) -> MetricComparison:
    difference = current - baseline
    return MetricComparison(
        current=current,
        baseline=baseline,
        difference=difference,
        percent_change=difference / baseline * 100 if baseline else 0.0,
        verdict=verdict(ci),
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        p_value=p_value,
        se=se,
        detectable=detectable,
    )
