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

- ``max_alert_increase`` fails when the data shows the candidate raising markedly more
  alerts (records flagged at the decision threshold) than the champion: the interval of
  its alerts relative to the champion's (candidate / champion - 1) lies wholly above the
  accepted increase. Fraud operations staff for an alert volume; a candidate that flags
  half as many again to catch a few more frauds changes their work, and is refused unless
  the request accepts the new volume;
- ``cost``'s ``max_increase`` and ``non_inferior`` read the expected cost per 100,000
  transactions the same way, relative to the champion's.

With fewer frauds than intervals need (``comparison.MIN_FRAUDS``) no gate against the
champion has a verdict: it fails, saying so, unless the request accepts it
(``accept_few_frauds``), and then it passes with a warning the headline shows. A gate that
passes while its point estimate is past the accepted margin warns too.

One gate no request can turn off (``guard``): a candidate that flags no record at its
decision threshold, or gives every record the same score, is not a fraud detector.
"""

from __future__ import annotations

from typing import TypedDict

from bot.core.comparison import too_few
from bot.core.cost import Cost
from bot.core.domain import Comparison, Evaluation, GateResult, MetricComparison
from bot.core.power import number as _number
from bot.core.request import Gates

GUARD = "guard"


def check(gates: Gates, evaluation: Evaluation, comparison: Comparison) -> tuple[GateResult, ...]:
    """The guard, then the request's gates, against the evaluation and the comparison."""
    accept = gates.accept_few_frauds
    results = [guard(evaluation, gates.decision_threshold)]
    results += [_minimum(metric, minimum, evaluation)
                for metric, minimum in gates.minimum.items()]
    results += [_max_drop(metric, drop, comparison, accept)
                for metric, drop in gates.max_drop.items()]
    results += [_non_inferior(metric, margin, comparison, accept)
                for metric, margin in gates.non_inferior.items()]
    results += [_better_than_champion(metric, comparison, accept)
                for metric in gates.better_than_champion]
    results.append(_max_alert_increase(gates.max_alert_increase, comparison, accept))
    if gates.cost is not None:
        results += _cost(gates.cost, comparison, accept)
    return tuple(results)


def warnings(results: tuple[GateResult, ...]) -> list[str]:
    """The risks of passing gates, one line each: what a ✅ alone would hide."""
    return [g.warning for g in results if g.passed and g.warning]


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


class _Seen(TypedDict):
    point: float | None
    ci_low: float | None
    ci_high: float | None
    frauds: int | None


def _seen(compared: MetricComparison, comparison: Comparison) -> _Seen:
    """The fields every gate against the champion shows: point estimate and interval."""
    return {"point": compared.difference, "ci_low": compared.ci_low,
            "ci_high": compared.ci_high, "frauds": comparison.frauds}


def _too_few(comparison: Comparison, compared: MetricComparison) -> bool:
    """Paired, but no interval because the test set holds too few frauds."""
    return (comparison.paired and compared.ci_low is None and comparison.frauds is not None
            and comparison.min_frauds is not None and comparison.frauds < comparison.min_frauds)


def _untested(name: str, kind: str, metric: str, threshold: float, comparison: Comparison,
              compared: MetricComparison, accept: str | None) -> GateResult:
    """A gate against the champion on a test set with too few frauds for a verdict: it fails,
    unless the request accepts it (``accept_few_frauds``), and then it passes with a warning."""
    why = too_few(comparison.frauds or 0, comparison.min_frauds or 0)
    if accept:
        return GateResult(
            name=name, threshold=threshold, value=None, passed=True, evaluated=False,
            detail=f"{why}; passes only because the request accepts it "
                   "(gates.accept_few_frauds, its reason is shown above)",
            kind=kind, metric=metric, warning=f"{metric} {why}, passed on the request's word",
            **_seen(compared, comparison),
        )
    return GateResult(
        name=name, threshold=threshold, value=None, passed=False, evaluated=False,
        detail=f"{why}; this gate needs a verdict, so it fails (a request that accepts the "
               "risk says why in gates.accept_few_frauds)",
        kind=kind, metric=metric, **_seen(compared, comparison),
    )


def _past(metric: str, difference: float, limit: float, comparison: Comparison,
          relative: bool = False) -> str:
    """The warning of a gate that passes although its point estimate is past the margin."""
    shown = (f"{difference:+.0%}, past the {limit:+.0%} you accept" if relative
             else f"{difference:+.3f}, past the {limit:+.3f} you accept")
    frauds = f"{comparison.frauds:,} frauds" if comparison.frauds else "this test set"
    return f"{metric} {shown}; {frauds} cannot confirm it"


def _max_drop(metric: str, max_drop: float, comparison: Comparison,
              accept: str | None = None) -> GateResult:
    name = f"{metric} not clearly more than {_number(max_drop)} below the champion"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return _not_evaluated(name, "max_drop", metric, -max_drop, passed=True)
    if _too_few(comparison, compared):
        return _untested(name, "max_drop", metric, -max_drop, comparison, compared, accept)
    if compared.ci_low is None or compared.ci_high is None:
        # No interval (no champion scores): the point difference is all.
        how = "unpaired" if not comparison.paired else "no interval"
        return GateResult(
            name=name, threshold=-max_drop, value=compared.difference,
            passed=compared.difference >= -max_drop,
            detail=f"{how}, point difference only: {compared.current:.4f} vs "
                   f"{compared.baseline:.4f} ({compared.difference:+.4f})",
            kind="max_drop", metric=metric, point=compared.difference,
        )
    passed = compared.ci_high >= -max_drop
    return GateResult(
        name=name,
        threshold=-max_drop,
        value=compared.ci_high,
        passed=passed,
        detail=f"{_interval(compared)}: fails only when the whole interval lies below "
               f"{-max_drop:+.4f}",
        kind="max_drop", metric=metric, detectable=compared.detectable,
        warning=(_past(metric, compared.difference, -max_drop, comparison)
                 if passed and compared.difference < -max_drop else None),
        **_seen(compared, comparison),
    )


def _non_inferior(metric: str, margin: float, comparison: Comparison,
                  accept: str | None = None) -> GateResult:
    name = f"{metric} shown at most {_number(margin)} below the champion (non-inferior)"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return _not_evaluated(name, "non_inferior", metric, -margin, passed=False)
    if _too_few(comparison, compared):
        return _untested(name, "non_inferior", metric, -margin, comparison, compared, accept)
    if not comparison.paired or compared.ci_low is None or compared.ci_high is None:
        return GateResult(
            name=name, threshold=-margin, value=None, passed=False,
            detail="needs a paired comparison: the champion's model must be re-scored on the "
                   "same test data, and it was not",
            kind="non_inferior", metric=metric, point=compared.difference,
        )
    return GateResult(
        name=name,
        threshold=-margin,
        value=compared.ci_low,
        passed=compared.ci_low > -margin,
        detail=f"{_interval(compared)}: passes only when the whole interval lies above "
               f"{-margin:+.4f}",
        kind="non_inferior", metric=metric, detectable=compared.detectable,
        **_seen(compared, comparison),
    )


def _better_than_champion(metric: str, comparison: Comparison,
                          accept: str | None = None) -> GateResult:
    name = f"{metric} better than the champion (95 % CI above 0)"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return _not_evaluated(name, "better_than_champion", metric, 0.0, passed=False)
    if _too_few(comparison, compared):
        # Better needs evidence: no request can accept its absence.
        return _untested(name, "better_than_champion", metric, 0.0, comparison, compared,
                         None)
    if not comparison.paired or compared.ci_low is None or compared.ci_high is None:
        return GateResult(
            name=name, threshold=0.0, value=None, passed=False,
            detail="needs a paired comparison: the champion's model must be re-scored on the "
                   "same test data, and no champion model artifact was found",
            kind="better_than_champion", metric=metric, point=compared.difference,
        )
    return GateResult(
        name=name,
        threshold=0.0,
        value=compared.ci_low,
        passed=compared.ci_low > 0,
        detail=_interval(compared),
        kind="better_than_champion", metric=metric,
        detectable=compared.detectable,
        **_seen(compared, comparison),
    )


ALERTS = "alerts_per_100k"


def _relative_interval(compared: MetricComparison, digits: int = 2) -> str:
    def percent(value: float | None) -> str:
        return "+∞" if value is not None and value >= 1e8 else f"{value:+.1%}"

    return (f"{compared.current:.{digits}f} vs {compared.baseline:.{digits}f}, change "
            f"{percent(compared.difference)}, 95 % CI [{percent(compared.ci_low)}, "
            f"{percent(compared.ci_high)}]")


def _max_alert_increase(accepted: float, comparison: Comparison,
                        accept: str | None = None) -> GateResult:
    """Alerts (records flagged) relative to the champion's: fails when the whole interval
    lies above the accepted increase."""
    name = f"alerts not clearly more than {accepted:.0%} above the champion's"
    kind = "max_alert_increase"
    compared = comparison.operating.get(ALERTS)
    if compared is None:
        # Unpaired: the champion's alerts on this test set are not known.
        return GateResult(
            name=name, threshold=accepted, value=None, passed=True, evaluated=False,
            detail="not evaluated: the champion was not re-scored on the same test rows, so "
                   "its alerts are not known; this gate passes, unchecked",
            kind=kind, metric=ALERTS)
    if _too_few(comparison, compared):
        return _untested(name, kind, ALERTS, accepted, comparison, compared, accept)
    if compared.ci_low is None or compared.ci_high is None:
        return GateResult(
            name=name, threshold=accepted, value=compared.difference,
            passed=compared.difference <= accepted,
            detail=f"no interval, point values only: {compared.current:.1f} vs "
                   f"{compared.baseline:.1f} alerts per 100,000 ({compared.difference:+.1%})",
            kind=kind, metric=ALERTS, point=compared.difference,
        )
    passed = compared.ci_low <= accepted
    caught = comparison.operating.get("alerts_per_fraud_caught")
    per_catch = (f"; alerts per fraud caught {caught.current:.2f} vs {caught.baseline:.2f}"
                 if caught is not None and max(caught.current, caught.baseline) < 1e9 else "")
    return GateResult(
        name=name, threshold=accepted, value=compared.ci_low, passed=passed,
        detail=f"alerts per 100,000 transactions {_relative_interval(compared, 1)}"
               f"{per_catch}: fails only when the whole interval lies above {accepted:+.0%}"
               + ("" if passed else "; a request that accepts the new alert volume raises "
                  "gates.max_alert_increase"),
        kind=kind, metric=ALERTS,
        warning=(_past("alerts", compared.difference, accepted, comparison, relative=True)
                 if passed and compared.difference > accepted else None),
        **_seen(compared, comparison),
    )


COST = "cost_per_100k"


def _cost(cost: Cost, comparison: Comparison, accept: str | None) -> list[GateResult]:
    """The request's cost gates on the expected cost per 100,000 transactions."""
    compared = comparison.operating.get(COST)
    results = []
    for kind, margin in (("max_cost_increase", cost.max_increase),
                         ("cost_non_inferior", cost.non_inferior)):
        if margin is None:
            continue
        fails_closed = kind == "cost_non_inferior"
        name = (f"expected cost not clearly more than {margin:.0%} above the champion's"
                if kind == "max_cost_increase" else
                f"expected cost shown at most {margin:.0%} above the champion's (non-inferior)")
        if compared is None:
            why = ("the champion was not re-scored on the same rows" if not comparison.paired
                   else "the test data has no Amount column, so missed fraud has no amount")
            results.append(GateResult(
                name=name, threshold=margin, value=None, passed=not fails_closed,
                detail=f"not available: {why}; this gate "
                       + ("fails: it claims something the data cannot show" if fails_closed
                          else "passes, unchecked"),
                evaluated=False, kind=kind, metric=COST))
            continue
        if _too_few(comparison, compared):
            results.append(_untested(name, kind, COST, margin, comparison, compared, accept))
            continue
        if compared.ci_low is None or compared.ci_high is None:
            results.append(GateResult(
                name=name, threshold=margin, value=None, passed=False,
                detail="no interval: the test set cannot show it", kind=kind, metric=COST,
                point=compared.difference))
            continue
        if kind == "max_cost_increase":
            passed = compared.ci_low <= margin
            rule = f"fails only when the whole interval lies above {margin:+.0%}"
            warning = (_past("expected cost", compared.difference, margin, comparison, True)
                       if passed and compared.difference > margin else None)
            value = compared.ci_low
        else:
            passed = compared.ci_high < margin
            rule = f"passes only when the whole interval lies below {margin:+.0%}"
            warning, value = None, compared.ci_high
        results.append(GateResult(
            name=name, threshold=margin, value=value, passed=passed,
            detail=f"{_relative_interval(compared)} per 100,000 transactions: {rule}",
            kind=kind, metric=COST, warning=warning,
            **_seen(compared, comparison),
        ))
    return results
