"""The live champion-vs-challenger comparison: the same test records sent to each variant.

Each record is its own ``InvokeEndpoint`` request, pinned to a variant with ``TargetVariant``:
that measures the latency a caller sees per request, and a failing record shows as one error
instead of failing a batch. A hundred records per variant is a few seconds against SageMaker.
Throttled requests are retried by the client's retry policy; one still throttled after it is
counted as throttled (SageMaker's request rate), never as an error of the model.
The statistics are a pure function of the raw per-record results (``summarize``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.adapters.aws.clients import client
from bot.errors import BotError, first_line
from bot.settings import Target

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

#: Frauds a sample should hold before its decisions say anything about quality.
ENOUGH_POSITIVES = 30
#: Error codes of a request refused for its rate.
THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


@dataclass(frozen=True)
class Invocation:
    """One record sent to one variant: its score, or the error, and how long it took."""

    score: float | None
    latency_ms: float
    error: str | None = None
    throttled: bool = False  # refused for the request rate, not answered by the model


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
    throttled: int = 0  # requests SageMaker refused for the request rate (not in ``errors``)


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


def compare_endpoints(
    t: Target,
    features: pd.DataFrame,
    labels: npt.ArrayLike | None,
    threshold: float,
    records: int = 100,
) -> EndpointComparison:
    """Send the first ``records`` rows to every live variant and compare the answers.

    ``features`` are the model's inputs in its training column order (the container reads
    CSV by position); ``labels`` (0/1, aligned with ``features``) enable the quality test.
    """
    from bot.adapters.aws import endpoint

    live = endpoint.read(t)
    if live is None:
        raise BotError(f"endpoint {t.endpoint_name} does not exist: nothing to compare")
    sample = features.head(records)
    lines = [_csv_line(row) for row in sample.itertuples(index=False, name=None)]
    runtime = client("sagemaker-runtime", t.region)
    results = {v.name: [_invoke(runtime, live.endpoint_name, v.name, line) for line in lines]
               for v in live.variants}
    return summarize(live.endpoint_name, results, labels, threshold)


def _csv_line(values: Sequence[Any]) -> str:
    """One record as the container's text/csv: no header, empty for missing, exact floats."""
    return ",".join("" if _missing(v) else repr(float(v)) for v in values)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _invoke(runtime: Any, endpoint_name: str, variant: str, line: str) -> Invocation:
    from botocore.exceptions import BotoCoreError, ClientError

    from bot.adapters.aws.clients import error_code

    started = time.perf_counter()
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name, TargetVariant=variant, ContentType="text/csv",
            Accept="text/csv", Body=line.encode(),
        )
        body = response["Body"].read().decode()
    except ClientError as error:
        return Invocation(None, _ms_since(started), first_line(error),
                          throttled=error_code(error) in THROTTLED)
    except BotoCoreError as error:
        return Invocation(None, _ms_since(started), first_line(error))
    latency = _ms_since(started)
    # The container answers one value per line, or comma-separated (older versions).
    values = [v for v in body.replace(",", "\n").split() if v]
    try:
        if len(values) != 1:
            raise ValueError(f"expected 1 score, got {len(values)}")
        return Invocation(float(values[0]), latency)
    except ValueError as error:
        return Invocation(None, latency, f"unreadable answer {body[:80]!r}: {error}")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


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
    errors = [r.error for r in results if r.score is None and not r.throttled]

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
        throttled=sum(1 for r in results if r.score is None and r.throttled),
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
        if v.throttled:
            parts.append(f"{v.throttled} of {v.count} requests to {v.variant} were throttled "
                         "by SageMaker (its request rate, not the model) and are left out.")
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


def to_json(comparison: EndpointComparison) -> dict[str, Any]:
    """The comparison as plan.json stores it."""
    return dataclasses.asdict(comparison)
