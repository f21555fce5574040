"""The test rows reduced to cells, so that a bootstrap resample is a draw of counts.

``bot.core.comparison`` resamples the test rows with replacement, positives and negatives
separately. Every metric depends on a negative only through where its score falls among
the positives' distinct scores and the threshold, for each model; the negatives are grouped
into those (joint) cells, and drawing n negatives with replacement is one multinomial draw
of cell counts. The positives get multinomial weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PER = 100_000  # transactions the alert and cost rates are given for
_RATIO_CAP = 1e9  # a ratio of infinity (no fraud caught) as a number percentiles can take


@dataclass(frozen=True)
class Costs:
    """What an alert and a missed fraud cost: the request's ``gates.cost``."""

    alert: float  # reviewing one alert
    missed_dollar: float  # per dollar of fraud amount not caught


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
        at_position = _negatives_at(view, c)
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

    def operating(
        self, weights: npt.ArrayLike, counts: npt.ArrayLike,
        fraud_amounts: FloatArray | None = None, costs: Costs | None = None,
    ) -> dict[str, tuple[FloatArray, FloatArray]]:
        """The operating point of both models (candidate 0, champion 1) for each resample.

        ``recall_at_champion_alerts``: the frauds among each model's top k rows by its
        ranking, k being the champion's alerts in that resample; rows tied at the cut count
        by the share of them that fits (the expected value of breaking ties at random).
        Without ``fraud_amounts`` there is no fraud amount caught and no cost.
        """
        w = np.asarray(weights, dtype=np.float64)
        c = np.asarray(counts, dtype=np.float64)
        n_pos, n_neg = float(self.positive_weights.size), float(self.counts.sum())
        n = n_pos + n_neg
        caught = [w @ view.positive_flagged for view in self.models]
        alerts = [t + c @ view.cell_flagged for t, view in zip(caught, self.models, strict=True)]
        result: dict[str, list[FloatArray]] = {
            "alerts_per_100k": [a * (PER / n) for a in alerts],
            "alerts_per_fraud_caught": [
                np.divide(a, t, out=np.where(a > 0, _RATIO_CAP, 0.0), where=t > 0)
                for a, t in zip(alerts, caught, strict=True)],
            "recall_at_champion_alerts": [_top(view, w, c, alerts[1]) / n_pos
                                          for view in self.models],
        }
        if fraud_amounts is not None:
            total = w @ fraud_amounts
            amount_caught = [w @ (fraud_amounts * view.positive_flagged)
                             for view in self.models]
            result["fraud_amount_caught"] = [
                np.divide(a, total, out=np.zeros_like(total), where=total > 0)
                for a in amount_caught]
            if costs is not None:
                result["cost_per_100k"] = [
                    (costs.alert * a + costs.missed_dollar * (total - m)) * (PER / n)
                    for a, m in zip(alerts, amount_caught, strict=True)]
        return {name: (mine, theirs) for name, (mine, theirs) in result.items()}


def _negatives_at(view: _ModelCells, counts: FloatArray) -> FloatArray:
    """Negatives at each of a model's positions, for each row of cell counts."""
    at_position = np.zeros((counts.shape[0], view.positions))
    at_position[:, view.occupied] = np.add.reduceat(
        counts[:, view.cell_order], view.position_starts, axis=1)
    return at_position


def _top(view: _ModelCells, weights: FloatArray, counts: FloatArray,
         volume: FloatArray) -> FloatArray:
    """Frauds among the ``volume`` highest-ranked rows of a model, for each resample."""
    frauds = np.zeros((counts.shape[0], view.positions))
    frauds[:, 1::2] = np.add.reduceat(weights[:, view.positive_order], view.score_starts,
                                      axis=1)
    rows = (_negatives_at(view, counts) + frauds)[:, ::-1]  # highest position first
    frauds = frauds[:, ::-1]
    rows_through, frauds_through = np.cumsum(rows, axis=1), np.cumsum(frauds, axis=1)
    # The first position whose rows reach the volume: the cut falls inside it.
    cut = np.minimum((rows_through < volume[:, None] - 1e-9).sum(axis=1), view.positions - 1)
    at = np.arange(rows.shape[0])
    rows_before = rows_through[at, cut] - rows[at, cut]
    share = np.divide(volume - rows_before, rows[at, cut], out=np.zeros_like(volume),
                      where=rows[at, cut] > 0)
    found: FloatArray = (frauds_through[at, cut] - frauds[at, cut]
                         + np.clip(share, 0.0, 1.0) * frauds[at, cut])
    return found


def _starts(ordered: IntArray) -> IntArray:
    """Where each run of equal values starts in a sorted array."""
    return np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1)).astype(np.int64)
