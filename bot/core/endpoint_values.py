"""The live comparison's values: what each variant answered (``Invocation``, collected by
``bot.adapters.aws.runtime``) and what ``bot.core.endpoint_comparison`` makes of them, which a
plan stores. Values only, below the statistics that compute them and the plan that holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict


@dataclass(frozen=True)
class Invocation:
    """One request (a batch of records) to one variant: a score per record, or the error."""

    scores: tuple[float, ...] | None
    records: int
    latency_ms: float
    error: str | None = None
    throttled: bool = False  # refused for the request rate, not answered by the model


@dataclass(frozen=True)
class VariantStats:
    """What one variant answered for the sample; rates are estimates for the whole test set
    (legit records weighted by how many each stands for)."""

    variant: str
    records: int
    requests: int
    errors: int  # records whose request failed
    score_mean: float | None
    flagged_rate: float | None  # share of the test set at or above the threshold
    recall: float | None
    precision: float | None
    latency_mean_ms: float | None  # per request
    latency_p95_ms: float | None
    ms_per_record: float | None
    first_error: str | None = None
    throttled: int = 0  # records SageMaker refused for the request rate (not in ``errors``)


@dataclass(frozen=True)
class LiveDifference:
    """Challenger minus champion for one metric, with its paired 95 % interval."""

    metric: str
    champion: float
    challenger: float
    difference: float
    ci_low: float
    ci_high: float
    verdict: str  # "better", "worse", "inconclusive" (for the challenger)
    detectable: float  # smallest difference this sample detects with 80 % power


@dataclass(frozen=True)
class EndpointComparison:
    """Champion versus challenger on the same labelled records, with a verdict in words."""

    endpoint_name: str
    records: int  # records sent to each variant
    threshold: float
    variants: tuple[VariantStats, ...]
    agreement: float | None  # share of the test set where both decisions agree (weighted)
    frauds: int | None  # frauds among the records (all of the test set's), None unlabelled
    legit_weight: float | None  # test-set legit records each sampled legit one stands for
    differences: tuple[LiveDifference, ...]
    frauds_only_champion: int | None  # McNemar's b: frauds only the champion catches
    frauds_only_challenger: int | None  # McNemar's c: frauds only the challenger catches
    mcnemar_p: float | None
    verdict: str


for _stored in (VariantStats, LiveDifference, EndpointComparison):
    setattr(_stored, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010
