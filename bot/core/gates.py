"""The production gates: what a candidate must reach before it may be merged.

Each gate compares one value with one threshold, so a reader sees the two numbers. Gates
against the champion read the 95 % confidence interval of the paired difference (candidate
minus champion), not the point difference: on a test set with a hundred frauds one fraud
ranked differently moves ROC AUC by about 0.01, so a point difference says little.

- ``max_drop`` fails when the data *shows* the candidate worse by more than the margin:
  the interval's upper bound lies below ``-margin``;
- ``non_inferior`` passes only when the data shows it at most ``margin`` worse: the lower
  bound lies above ``-margin`` (a stronger claim, which needs a large test set);
- ``better_than_champion`` passes only when the lower bound lies above 0.

One gate no request can turn off (``guard``): a candidate that flags no record at its
decision threshold, or gives every record the same score, is not a fraud detector.
"""

from __future__ import annotations

import math

from bot.core.comparison import detectable_difference
from bot.core.domain import Comparison, Evaluation, GateResult, MetricComparison
from bot.core.request import Gates

GUARD = "guard"


def check(gates: Gates, evaluation: Evaluation, comparison: Comparison) -> tuple[GateResult, ...]:
    """The guard, then the request's gates, against the evaluation and the comparison."""
    results = [guard(evaluation, gates.decision_threshold)]
    results += [_minimum(metric, minimum, evaluation)
                for metric, minimum in gates.minimum.items()]
    results += [_max_drop(metric, drop, comparison) for metric, drop in gates.max_drop.items()]
    results += [_non_inferior(metric, margin, comparison)
                for metric, margin in gates.non_inferior.items()]
    results += [_better_than_champion(metric, comparison)
                for metric in gates.better_than_champion]
    return tuple(results)


def guard(evaluation: Evaluation, threshold: float) -> GateResult:
    """Fails a candidate that flags nothing at its threshold or scores every record alike."""
    cm = evaluation.confusion_matrix
    flagged = cm.tp + cm.fp
    constant = evaluation.distinct_scores == 1
    name = "candidate flags fraud and ranks records (always checked)"
    if constant:
        detail = "every record gets the same score: the model ranks nothing"
    elif flagged == 0:
        detail = (f"flags no record at threshold {_number(threshold)}: it would never report "
                  f"a fraud (0 of {evaluation.positives:,} caught)")
    else:
        detail = (f"flags {flagged:,} records at threshold {_number(threshold)}, "
                  f"{cm.tp:,} of {evaluation.positives:,} frauds")
        if evaluation.distinct_scores is not None:
            detail += f"; {evaluation.distinct_scores:,} distinct scores"
    return GateResult(name=name, threshold=1.0, value=float(flagged),
                      passed=flagged > 0 and not constant, detail=detail, kind=GUARD)


def accuracy_is_uninformative(evaluation: Evaluation) -> bool:
    """True when the model is no better than calling every transaction legit.

    With 0.17 % frauds that alone scores 99.8 % accuracy, so the seed's accuracy gate
    passes; the comment says so instead of letting it look like a good model.
    """
    metrics = evaluation.metrics
    return (metrics["accuracy"] <= evaluation.majority_accuracy
            or metrics["recall"] == 0)


def power_note(gate: GateResult) -> str | None:
    """What this test set can and cannot show for a gate against the champion, in words."""
    d = gate.detectable
    if d is None or not gate.evaluated:
        return None
    margin = -gate.threshold
    smallest = (f"the smallest difference in {gate.metric} this test set detects is "
                f"{d:.3f} (80 % power)")
    if gate.kind == "max_drop":
        note = (f"{smallest}; this gate blocks a candidate truly worse by "
                f"{margin + d:.3f} or more four times in five.")
        if margin < d:
            note += (f" Its margin {_number(margin)} is below {d:.3f}: a drop between "
                     f"{_number(margin)} and {margin + d:.3f} usually passes unseen.")
        return note[0].upper() + note[1:]
    if gate.kind == "non_inferior":
        se = d / _DETECTABLE_PER_SE  # (ignores a threshold metric's step: an upper bound)
        equal_passes = 0.5 * math.erfc(-(margin / se - _Z_95) / math.sqrt(2)) if se else 1.0
        note = (f"{smallest}; an equal candidate passes this gate "
                f"{equal_passes:.0%} of the time.")
        if margin < d:
            note += (f" Its margin {_number(margin)} is below {d:.3f}: this test set is too "
                     "small to show non-inferiority reliably.")
        return note[0].upper() + note[1:]
    if gate.kind == "better_than_champion":
        note = (f"{smallest}; a candidate truly better by less than that usually fails "
                "this gate.")
        return note[0].upper() + note[1:]
    return None


_Z_95 = 1.959963984540054
_DETECTABLE_PER_SE = detectable_difference(1.0) or 1.0


def _minimum(metric: str, minimum: float, evaluation: Evaluation) -> GateResult:
    value = evaluation.metrics[metric]
    return GateResult(
        name=f"{metric} >= {_number(minimum)}",
        threshold=minimum,
        value=value,
        passed=value >= minimum,
        detail=f"{metric} is {value:.4f}",
        kind="minimum", metric=metric,
    )


def _not_evaluated(name: str, kind: str, metric: str, threshold: float,
                   passed: bool) -> GateResult:
    consequence = ("passes, unchecked" if passed
                   else "fails: it claims something the data cannot show")
    return GateResult(name=name, threshold=threshold, value=None, passed=passed,
                      detail=f"not evaluated: the champion has no {metric} value; "
                             f"this gate {consequence}",
                      evaluated=False, kind=kind, metric=metric)


def _interval(compared: MetricComparison) -> str:
    return (f"difference {compared.difference:+.4f}, "
            f"95 % CI [{compared.ci_low:+.4f}, {compared.ci_high:+.4f}]")


def _max_drop(metric: str, max_drop: float, comparison: Comparison) -> GateResult:
    name = f"{metric} not clearly more than {_number(max_drop)} below the champion"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return _not_evaluated(name, "max_drop", metric, -max_drop, passed=True)
    if compared.ci_low is None or compared.ci_high is None:
        # No interval (no champion scores, or too few frauds): the point difference is all.
        how = "unpaired" if not comparison.paired else "no interval"
        return GateResult(
            name=name, threshold=-max_drop, value=compared.difference,
            passed=compared.difference >= -max_drop,
            detail=f"{how}, point difference only: {compared.current:.4f} vs "
                   f"{compared.baseline:.4f} ({compared.difference:+.4f})",
            kind="max_drop", metric=metric,
        )
    return GateResult(
        name=name,
        threshold=-max_drop,
        value=compared.ci_high,
        passed=compared.ci_high >= -max_drop,
        detail=f"{_interval(compared)}: fails only when the whole interval lies below "
               f"{-max_drop:+.4f}",
        kind="max_drop", metric=metric, detectable=compared.detectable,
    )


def _non_inferior(metric: str, margin: float, comparison: Comparison) -> GateResult:
    name = f"{metric} shown at most {_number(margin)} below the champion (non-inferior)"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return _not_evaluated(name, "non_inferior", metric, -margin, passed=False)
    if not comparison.paired or compared.ci_low is None or compared.ci_high is None:
        return GateResult(
            name=name, threshold=-margin, value=None, passed=False,
            detail="needs a paired comparison: the champion's model must be re-scored on the "
                   "same test data, and it was not",
            kind="non_inferior", metric=metric,
        )
    return GateResult(
        name=name,
        threshold=-margin,
        value=compared.ci_low,
        passed=compared.ci_low > -margin,
        detail=f"{_interval(compared)}: passes only when the whole interval lies above "
               f"{-margin:+.4f}",
        kind="non_inferior", metric=metric, detectable=compared.detectable,
    )


def _better_than_champion(metric: str, comparison: Comparison) -> GateResult:
    name = f"{metric} better than the champion (95 % CI above 0)"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return _not_evaluated(name, "better_than_champion", metric, 0.0, passed=False)
    if not comparison.paired or compared.ci_low is None or compared.ci_high is None:
        return GateResult(
            name=name, threshold=0.0, value=None, passed=False,
            detail="needs a paired comparison: the champion's model must be re-scored on the "
                   "same test data, and no champion model artifact was found",
            kind="better_than_champion", metric=metric,
        )
    return GateResult(
        name=name,
        threshold=0.0,
        value=compared.ci_low,
        passed=compared.ci_low > 0,
        detail=_interval(compared),
        kind="better_than_champion", metric=metric,
        detectable=compared.detectable,
    )


def _number(value: float) -> str:
    """0.9 as ``0.90``, 0.925 as ``0.925``: at least two decimals, no trailing noise."""
    text = f"{value:.6f}".rstrip("0")
    decimals = len(text.partition(".")[2])
    return f"{value:.{max(decimals, 2)}f}"
