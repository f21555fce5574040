"""Champion versus challenger on the live endpoint: statistics of the per-record answers
(pure; ``bot.adapters.aws.runtime`` sends the records).

The records are labelled test records: every fraud of the test set and a random sample of
the legit ones (class-stratified), each sampled legit record standing for ``legit_weight``
legit records of the test set. Both variants answer the same records, so their recall and
precision are compared paired: a class-stratified bootstrap of the records gives a 95 %
interval of each difference and a verdict, as offline; McNemar's exact test says whether
the frauds only one variant catches lean one way; the smallest recall difference this
sample detects (80 % power) is stated, so a reader knows what "no difference" means here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from bot.core.comparison import detectable_difference
from bot.core.comparison import verdict as interval_verdict
from bot.core.endpoint_values import EndpointComparison, Invocation, LiveDifference, VariantStats

#: Bootstrap resamples of the live comparison's intervals (four cells per class: cheap).
RESAMPLES = 2000


def summarize(
    endpoint_name: str,
    results: Mapping[str, Sequence[Invocation]],
    labels: npt.ArrayLike | None,
    threshold: float,
    legit_weight: float = 1.0,
    seed: int = 0,
) -> EndpointComparison:
    """The comparison from the raw results of each variant (pure).

    ``results`` holds each variant's requests in the order the records were sent; ``labels``
    are the sent records' labels (None: unlabelled, agreement and latency only). The first
    two variants in ``champion``, ``challenger`` order (else as given) are compared.
    """
    names = sorted(results, key=lambda n: {"champion": 0, "challenger": 1}.get(n, 2))
    scores = {n: _scores(results[n]) for n in names}
    records = max((s.size for s in scores.values()), default=0)
    truth = None if labels is None else np.asarray(labels).astype(int).ravel()[:records]
    weights = np.ones(records) if truth is None else np.where(truth == 1, 1.0, legit_weight)
    stats = tuple(_variant_stats(n, results[n], scores[n], truth, weights, threshold)
                  for n in names)

    agreement = b = c = p_value = None
    differences: tuple[LiveDifference, ...] = ()
    if len(names) >= 2:
        first, second = scores[names[0]], scores[names[1]]
        answered = ~np.isnan(first) & ~np.isnan(second)
        decide = (first >= threshold, second >= threshold)
        if answered.any():
            same = decide[0][answered] == decide[1][answered]
            agreement = float(np.average(same, weights=weights[answered]))
        if truth is not None and answered.any():
            fraud = answered & (truth == 1)
            b = int(np.count_nonzero(fraud & decide[0] & ~decide[1]))
            c = int(np.count_nonzero(fraud & ~decide[0] & decide[1]))
            p_value = _mcnemar(b, c)
            differences = _differences(truth[answered], decide[0][answered],
                                       decide[1][answered], legit_weight, seed)
    comparison = EndpointComparison(
        endpoint_name=endpoint_name, records=records, threshold=threshold, variants=stats,
        agreement=agreement, frauds=None if truth is None else int(truth.sum()),
        legit_weight=None if truth is None else legit_weight, differences=differences,
        frauds_only_champion=b, frauds_only_challenger=c, mcnemar_p=p_value, verdict="",
    )
    return dataclasses.replace(comparison, verdict=verdict(comparison))


def _scores(invocations: Sequence[Invocation]) -> np.ndarray:
    """One score per record sent, NaN where the request failed."""
    parts = [np.asarray(i.scores, dtype=np.float64) if i.scores is not None
             else np.full(i.records, np.nan) for i in invocations]
    return np.concatenate(parts) if parts else np.zeros(0)


def _mcnemar(b: int, c: int) -> float:
    """Exact two-sided McNemar test: the binomial test of b successes in b + c at 1/2."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2.0**n
    return min(1.0, 2 * tail)


def _differences(
    truth: np.ndarray, champion: np.ndarray, challenger: np.ndarray, legit_weight: float,
    seed: int,
) -> tuple[LiveDifference, ...]:
    """Recall and precision of the challenger minus the champion's, with bootstrap intervals.

    Each class is resampled separately (the frauds are all of the test set's, the legit ones
    a sample), as joint-decision cell counts: (neither, champion only, challenger only, both).
    """
    rng = np.random.default_rng(seed)
    cells = []
    for cls in (1, 0):
        rows = truth == cls
        code = champion[rows].astype(int) + 2 * challenger[rows].astype(int)
        observed = np.bincount(code, minlength=4).astype(np.float64)
        total = int(observed.sum())
        drawn = (rng.multinomial(total, observed / total, size=RESAMPLES) if total
                 else np.zeros((RESAMPLES, 4)))
        cells.append((observed[None, :], drawn))
    (fraud_seen, fraud_drawn), (legit_seen, legit_drawn) = cells
    n_frauds = float(fraud_seen.sum())
    out = []
    for metric in ("recall", "precision"):
        values = []
        for fraud, legit in ((fraud_seen, legit_seen), (fraud_drawn, legit_drawn)):
            tp = (fraud[:, 1] + fraud[:, 3], fraud[:, 2] + fraud[:, 3])
            fp = (legit[:, 1] + legit[:, 3], legit[:, 2] + legit[:, 3])
            per_model = []
            for k in (0, 1):
                if metric == "recall":
                    per_model.append(tp[k] / n_frauds if n_frauds else np.zeros_like(tp[k]))
                else:
                    flagged = tp[k] + legit_weight * fp[k]
                    per_model.append(np.divide(tp[k], flagged, out=np.zeros_like(flagged),
                                               where=flagged > 0))
            values.append(per_model)
        (champion_value, challenger_value), (champion_drawn, challenger_drawn) = values
        drawn_difference = challenger_drawn - champion_drawn
        low, high = np.percentile(drawn_difference, [2.5, 97.5])
        spread = float(np.std(drawn_difference, ddof=1))
        if metric == "recall" and n_frauds:
            # No fraud caught by one variant only: the spread is 0, yet a single such fraud
            # would move recall by 1/frauds; that is the resolution the sample has.
            spread = max(spread, 1.0 / n_frauds)
        out.append(LiveDifference(
            metric=metric, champion=float(champion_value[0]),
            challenger=float(challenger_value[0]),
            difference=float(challenger_value[0] - champion_value[0]),
            ci_low=float(low), ci_high=float(high),
            verdict=interval_verdict((float(low), float(high))),
            detectable=float(detectable_difference(spread) or 0.0),
        ))
    return tuple(out)


def _variant_stats(
    name: str, invocations: Sequence[Invocation], scores: np.ndarray,
    truth: np.ndarray | None, weights: np.ndarray, threshold: float,
) -> VariantStats:
    answered = ~np.isnan(scores)
    latencies = np.array([i.latency_ms for i in invocations], dtype=np.float64)
    records = scores.size
    flagged = answered & (scores >= np.float64(threshold))
    recall = precision = None
    if truth is not None and answered.any():
        fraud = answered & (truth == 1)
        tp = float(np.count_nonzero(flagged & (truth == 1)))
        fp = float(weights[flagged & (truth == 0)].sum())
        recall = tp / np.count_nonzero(fraud) if fraud.any() else None
        precision = tp / (tp + fp) if tp + fp else 0.0
    w = weights[answered]
    throttled = sum(i.records for i in invocations if i.scores is None and i.throttled)
    return VariantStats(
        variant=name,
        records=records,
        requests=len(invocations),
        errors=int(records - np.count_nonzero(answered)) - throttled,
        score_mean=float(np.average(scores[answered], weights=w)) if w.size else None,
        flagged_rate=float(w[flagged[answered]].sum() / w.sum()) if w.size else None,
        recall=recall,
        precision=precision,
        latency_mean_ms=float(latencies.mean()) if latencies.size else None,
        latency_p95_ms=float(np.percentile(latencies, 95)) if latencies.size else None,
        ms_per_record=float(latencies.sum() / records) if records else None,
        first_error=next((i.error for i in invocations if i.error and not i.throttled), None),
        throttled=throttled,
    )


_WORDS = {"better": "▲ better", "worse": "▼ worse", "inconclusive": "≈ inconclusive"}


def verdict(c: EndpointComparison) -> str:
    """What the numbers do and do not show, in plain words."""
    if len(c.variants) < 2:
        only = c.variants[0].variant if c.variants else "no variant"
        return f"Only {only} serves on {c.endpoint_name}: nothing to compare."
    first, second = c.variants[0], c.variants[1]
    parts = []
    for v in (first, second):
        if v.errors:
            parts.append(f"{v.errors:,} of {v.records:,} records sent to {v.variant} got no "
                         f"answer ({v.first_error}).")
        if v.throttled:
            parts.append(f"{v.throttled:,} of {v.records:,} records sent to {v.variant} were "
                         "throttled by SageMaker (its request rate, not the model) and are "
                         "left out.")
    if c.agreement is not None:
        parts.append(f"{first.variant} and {second.variant} make the same decision on "
                     f"{c.agreement:.2%} of the test set.")
    if c.frauds is None:
        parts.append("No labels were given, so this shows agreement and latency, "
                     "not which model is right.")
    elif c.frauds == 0:
        parts.append("The records hold no fraud: recall cannot be compared.")
    else:
        for d in c.differences:
            parts.append(
                f"{d.metric.capitalize()}: {second.variant} {d.challenger:.3f} vs "
                f"{first.variant} {d.champion:.3f}, difference {d.difference:+.3f} "
                f"(95 % CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}]): {second.variant} "
                f"{_WORDS[d.verdict]}."
            )
        recall = next((d for d in c.differences if d.metric == "recall"), None)
        if recall is not None:
            caught = (f"Both catch exactly the same of the {c.frauds} frauds"
                      if c.frauds_only_champion == c.frauds_only_challenger == 0 else
                      f"Of the {c.frauds} frauds, {c.frauds_only_challenger} are caught only "
                      f"by {second.variant} and {c.frauds_only_champion} only by "
                      f"{first.variant} (McNemar p = {c.mcnemar_p:.3g})")
            parts.append(f"{caught}; this sample detects recall differences of "
                         f"{recall.detectable:.3f} or more (80 % power).")
    if first.latency_p95_ms is not None and second.latency_p95_ms is not None:
        parts.append(f"p95 latency per request: {first.variant} {first.latency_p95_ms:.1f} ms, "
                     f"{second.variant} {second.latency_p95_ms:.1f} ms.")
    return " ".join(parts)
