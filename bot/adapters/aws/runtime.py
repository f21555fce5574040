"""The live champion-vs-challenger comparison: the same test records sent to each variant.

Each record is its own ``InvokeEndpoint`` request, pinned to a variant with ``TargetVariant``:
that measures the latency a caller sees per request, and a failing record shows as one error
instead of failing a batch. A hundred records per variant is a few seconds against SageMaker.
The statistics are a pure function of the raw per-record results (``summarize``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.adapters.aws.clients import client
from bot.core.endpoint_comparison import EndpointComparison, Invocation, summarize
from bot.errors import BotError, first_line
from bot.settings import Target

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

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

    started = time.perf_counter()
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name, TargetVariant=variant, ContentType="text/csv",
            Accept="text/csv", Body=line.encode(),
        )
        body = response["Body"].read().decode()
    except (ClientError, BotoCoreError) as error:
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
