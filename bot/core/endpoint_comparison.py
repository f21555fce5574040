"""Champion versus challenger on the live endpoint: statistics of the per-record answers
(pure; ``bot.adapters.aws.runtime`` sends the records)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

if TYPE_CHECKING:
    import numpy.typing as npt

#: Frauds a sample should hold before its decisions say anything about quality.
ENOUGH_POSITIVES = 30


@dataclass(frozen=True)
class Invocation:
    """One record sent to one variant: its score, or the error, and how long it took."""

    score: float | None
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True)
class VariantStats:
    """What one variant answered for the sample."""

    variant: str
    count: int
    errors: int
    score_mean: float | None
    score_p50: float | None
    score_p90: float | None
    score_p99: float | None
    score_max: float | None
    positive_rate: float | None  # share of answered records at or above the threshold
    latency_mean_ms: float | None
    latency_p95_ms: float | None
    first_error: str | None = None


@dataclass(frozen=True)
class EndpointComparison:
    """Champion versus challenger on the same records, with a verdict in plain words."""

    endpoint_name: str
    records: int
    threshold: float
    variants: tuple[VariantStats, ...]
    agreement: float | None  # share of records both answered where their decisions agree
    positives: int | None  # frauds among the records, when labels are known
    champion_only_right: int | None  # McNemar's b: champion right, challenger wrong
    challenger_only_right: int | None  # McNemar's c: challenger right, champion wrong
    mcnemar_p: float | None
    records_for_enough_positives: int | None  # records expected to hold ENOUGH_POSITIVES
    verdict: str


def summarize(
    endpoint_name: str,
    results: Mapping[str, Sequence[Invocation]],
    labels: npt.ArrayLike | None,
    threshold: float,
) -> EndpointComparison:
    """The comparison from the raw per-record results of each variant (pure).

    The first two variants in ``champion``, ``challenger`` order (else as given) are compared;
    ``labels`` may be longer than the sample (the whole test set): its fraud rate sizes the
    sample that quality judgements would need.
    """
    import numpy as np
    from scipy.stats import binomtest

    names = sorted(results, key=lambda n: {"champion": 0, "challenger": 1}.get(n, 2))
    records = max((len(results[n]) for n in names), default=0)
    stats = tuple(_variant_stats(n, results[n], threshold) for n in names)
    all_labels = None if labels is None else np.asarray(labels).astype(int).ravel()
    sample_labels = None if all_labels is None else all_labels[:records]
    positives = None if sample_labels is None else int(sample_labels.sum())
    needed = None
    if all_labels is not None and all_labels.sum() > 0:
        needed = -(-ENOUGH_POSITIVES * all_labels.size // int(all_labels.sum()))

    agreement = b = c = p_value = None
    if len(names) >= 2:
        first, second = results[names[0]], results[names[1]]
        both = [i for i in range(min(len(first), len(second)))
                if first[i].score is not None and second[i].score is not None]
        decide = [(_decision(first[i], threshold), _decision(second[i], threshold))
                  for i in both]
        if both:
            agreement = sum(x == y for x, y in decide) / len(both)
        if sample_labels is not None:
            labelled = [(d, int(sample_labels[i])) for d, i in zip(decide, both, strict=True)
                        if i < sample_labels.size]
            b = sum(x == y and z != y for (x, z), y in labelled)
            c = sum(z == y and x != y for (x, z), y in labelled)
            p_value = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    comparison = EndpointComparison(
        endpoint_name=endpoint_name, records=records, threshold=threshold, variants=stats,
        agreement=agreement, positives=positives, champion_only_right=b,
        challenger_only_right=c, mcnemar_p=p_value, records_for_enough_positives=needed,
        verdict="",
    )
    return dataclasses.replace(comparison, verdict=verdict(comparison))


def _decision(invocation: Invocation, threshold: float) -> int:
    return int(invocation.score is not None and invocation.score >= threshold)


def _variant_stats(name: str, results: Sequence[Invocation], threshold: float) -> VariantStats:
    import numpy as np

    scores = np.array([r.score for r in results if r.score is not None], dtype=np.float64)
    latencies = np.array([r.latency_ms for r in results], dtype=np.float64)
    errors = [r.error for r in results if r.score is None]

    def pct(values: Any, q: float) -> float | None:
        return float(np.percentile(values, q)) if values.size else None

    return VariantStats(
        variant=name,
        count=len(results),
        errors=len(errors),
        score_mean=float(scores.mean()) if scores.size else None,
        score_p50=pct(scores, 50),
        score_p90=pct(scores, 90),
        score_p99=pct(scores, 99),
        score_max=float(scores.max()) if scores.size else None,
        positive_rate=float((scores >= threshold).mean()) if scores.size else None,
        latency_mean_ms=float(latencies.mean()) if latencies.size else None,
        latency_p95_ms=pct(latencies, 95),
        first_error=next((e for e in errors if e), None),
    )


def verdict(c: EndpointComparison) -> str:
    """What the numbers do and do not show, in plain words."""
    if len(c.variants) < 2:
        only = c.variants[0].variant if c.variants else "no variant"
        return f"Only {only} serves on {c.endpoint_name}: nothing to compare."
    first, second = c.variants[0], c.variants[1]
    parts = []
    for v in (first, second):
        if v.errors:
            parts.append(f"{v.errors} of {v.count} requests to {v.variant} failed "
                         f"({v.first_error}).")
    if c.agreement is not None:
        parts.append(f"{first.variant} and {second.variant} make the same decision on "
                     f"{c.agreement:.1%} of the {c.records} records.")
    if c.positives is None:
        parts.append("No labels were given, so this shows agreement and latency, "
                     "not which model is right.")
    elif c.positives < ENOUGH_POSITIVES:
        need = (f"; at the test set's fraud rate about {c.records_for_enough_positives:,} "
                f"records would hold {ENOUGH_POSITIVES}" if c.records_for_enough_positives
                else "")
        parts.append(
            f"Too small to judge quality: the {c.records} records hold {c.positives} "
            f"fraud{'s' if c.positives != 1 else ''}{need}. Judge quality on the offline "
            "evaluation; this sample shows that both variants serve and how often they agree."
        )
    elif c.mcnemar_p is not None and c.mcnemar_p < 0.05:
        better, worse = ((first, second) if (c.champion_only_right or 0)
                         > (c.challenger_only_right or 0) else (second, first))
        parts.append(
            f"{better.variant} is right more often where they disagree "
            f"({c.champion_only_right} vs {c.challenger_only_right} records, McNemar "
            f"p = {c.mcnemar_p:.3g}); {worse.variant} is worse on this sample."
        )
    elif c.mcnemar_p is not None:
        parts.append(
            f"No significant difference in correctness ({c.champion_only_right} vs "
            f"{c.challenger_only_right} records only one gets right, McNemar "
            f"p = {c.mcnemar_p:.3g})."
        )
    if first.latency_p95_ms is not None and second.latency_p95_ms is not None:
        parts.append(f"p95 latency: {first.variant} {first.latency_p95_ms:.1f} ms, "
                     f"{second.variant} {second.latency_p95_ms:.1f} ms.")
    return " ".join(parts)


for _stored in (VariantStats, EndpointComparison):
    setattr(_stored, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010
