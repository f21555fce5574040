"""The production gates (6.5): what a candidate must reach before it may be merged.

Each gate compares one value with one threshold, so a reader sees the two numbers.
"""

from __future__ import annotations

from bot.core.domain import Comparison, Evaluation, GateResult
from bot.core.request import Gates


def check(gates: Gates, evaluation: Evaluation, comparison: Comparison) -> tuple[GateResult, ...]:
    """Check the request's gates against the candidate's evaluation and the comparison."""
    results = [_minimum(metric, minimum, evaluation)
               for metric, minimum in gates.minimum.items()]
    results += [_max_drop(metric, drop, comparison) for metric, drop in gates.max_drop.items()]
    results += [_better_than_champion(metric, comparison)
                for metric in gates.better_than_champion]
    return tuple(results)


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
    )


def _max_drop(metric: str, max_drop: float, comparison: Comparison) -> GateResult:
    name = f"{metric} drops at most {_number(max_drop)} below the champion"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return GateResult(name=name, threshold=-max_drop, value=None, passed=True,
                          detail="no champion value")
    return GateResult(
        name=name,
        threshold=-max_drop,
        value=compared.difference,
        passed=compared.difference >= -max_drop,
        detail=f"{compared.current:.4f} vs champion {compared.baseline:.4f} "
               f"({compared.difference:+.4f})",
    )


def _better_than_champion(metric: str, comparison: Comparison) -> GateResult:
    name = f"{metric} better than the champion (95 % CI above 0)"
    compared = comparison.metrics.get(metric)
    if compared is None:
        return GateResult(name=name, threshold=0.0, value=None, passed=False,
                          detail="no champion value")
    if not comparison.paired or compared.ci_low is None or compared.ci_high is None:
        return GateResult(
            name=name, threshold=0.0, value=None, passed=False,
            detail="needs a paired comparison: the champion's model must be re-scored on the "
                   "same test data, and no champion model artifact was found",
        )
    return GateResult(
        name=name,
        threshold=0.0,
        value=compared.ci_low,
        passed=compared.ci_low > 0,
        detail=f"difference {compared.difference:+.4f}, "
               f"95 % CI [{compared.ci_low:+.4f}, {compared.ci_high:+.4f}]",
    )


def _number(value: float) -> str:
    """0.9 as ``0.90``, 0.925 as ``0.925``: at least two decimals, no trailing noise."""
    text = f"{value:.6f}".rstrip("0")
    decimals = len(text.partition(".")[2])
    return f"{value:.{max(decimals, 2)}f}"
