"""The live champion-vs-challenger comparison: the same labelled test records sent to each
variant.

Every fraud of the test set is sent, and a random sample of its legit records; each sampled
legit record stands for ``legit_weight`` of them, so rates are estimates for the whole test
set. Records go in multi-record ``text/csv`` requests (the SageMaker XGBoost container
answers one score per line), pinned to a variant with ``TargetVariant``, each under
InvokeEndpoint's 6 MB payload limit; a failing request shows as errors for its records. The
statistics are a pure function of the raw results (``summarize``).
Throttled requests are retried by the client's retry policy; one still throttled after it is
counted as throttled (SageMaker's request rate), never as an error of the model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from bot.adapters.aws import endpoint, s3
from bot.adapters.aws.clients import client, error_code
from bot.core import training
from bot.core.endpoint_comparison import summarize
from bot.core.endpoint_values import EndpointComparison, Invocation
from bot.errors import BotError, first_line
from bot.settings import Target

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

#: InvokeEndpoint accepts at most 6 MB per request; batches stay under this many bytes.
MAX_BATCH_BYTES = 5_000_000
#: And under this many records, so a slow batch is not a timeout (60 s per request).
MAX_BATCH_RECORDS = 2_000
#: Error codes of a request refused for its rate.
THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


def compare_endpoints(
    t: Target,
    chosen: pd.DataFrame,
    labels: npt.ArrayLike | None,
    threshold: float,
    legit_weight: float = 1.0,
    seed: int = 0,
) -> EndpointComparison:
    """Send the ``chosen`` test rows to every live variant and compare their answers.

    ``chosen`` are the rows ``sample`` picked (every fraud and a sample of legit ones; read
    from the test table without holding it), ``labels`` theirs (0/1; ``None``: no quality
    comparison), ``legit_weight`` how many legit rows each sampled one stands for. Each
    variant gets the columns its model was trained with, in its order (the container reads
    CSV by position), else all of them.
    """
    live = endpoint.read(t)
    if live is None:
        raise BotError(f"endpoint {t.endpoint_name} does not exist: nothing to compare")
    runtime = client("sagemaker-runtime", t.region)
    results = {}
    for variant in live.variants:
        columns = _model_columns(variant.model_data_url, list(chosen.columns))
        missing = [c for c in columns if c not in chosen.columns]
        if missing:
            error = f"the test data lacks the model's columns {', '.join(missing[:10])}"
            results[variant.name] = [Invocation(None, len(chosen), 0.0, error)]
            continue
        results[variant.name] = [
            _invoke(runtime, live.endpoint_name, variant.name, body, count)
            for body, count in batches(chosen[columns])
        ]
    sent = None if labels is None else _as_array(labels)
    return summarize(live.endpoint_name, results, sent, threshold, legit_weight, seed)


def sample(labels: npt.ArrayLike | None, legit_records: int, seed: int, size: int
           ) -> tuple[npt.NDArray[np.int64], float]:
    """Rows to send, in the data's order, and how many legit rows each sampled one stands for.

    Every fraud, and ``legit_records`` legit rows drawn without replacement (all if fewer).
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        chosen = rng.choice(size, min(size, legit_records), replace=False)
        return np.sort(chosen).astype(np.int64), 1.0
    truth = _as_array(labels) == 1
    frauds, legit = np.flatnonzero(truth), np.flatnonzero(~truth)
    drawn = rng.choice(legit, min(legit.size, legit_records), replace=False)
    weight = legit.size / drawn.size if drawn.size else 1.0
    return np.sort(np.concatenate([frauds, drawn])).astype(np.int64), float(weight)


def batches(frame: pd.DataFrame) -> list[tuple[bytes, int]]:
    """CSV request bodies of at most ``MAX_BATCH_RECORDS`` records and ``MAX_BATCH_BYTES``."""
    out: list[tuple[bytes, int]] = []
    lines: list[bytes] = []
    size = 0
    for row in frame.itertuples(index=False, name=None):
        line = _csv_line(row).encode()
        if lines and (len(lines) >= MAX_BATCH_RECORDS or size + len(line) + 1 > MAX_BATCH_BYTES):
            out.append((b"\n".join(lines), len(lines)))
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines:
        out.append((b"\n".join(lines), len(lines)))
    return out


def _as_array(labels: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.asarray(labels).astype(np.int64).ravel()


def _model_columns(model_data_url: str, fallback: list[str]) -> list[str]:
    """The columns a variant's model was trained with, read from its artifact; else all."""
    try:
        names = training.load_model(s3.read_uri(model_data_url)).feature_names
    except BotError:
        return fallback
    return list(names) if names else fallback


def _csv_line(values: Sequence[Any]) -> str:
    """One record as the container's text/csv: no header, empty for missing, exact floats."""
    return ",".join("" if _missing(v) else repr(float(v)) for v in values)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _invoke(runtime: Any, endpoint_name: str, variant: str, body: bytes,
            records: int) -> Invocation:
    started = time.perf_counter()
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name, TargetVariant=variant, ContentType="text/csv",
            Accept="text/csv", Body=body,
        )
        answer = response["Body"].read().decode()
    except ClientError as error:
        return Invocation(None, records, _ms_since(started), first_line(error),
                          throttled=error_code(error) in THROTTLED)
    except BotoCoreError as error:
        return Invocation(None, records, _ms_since(started), first_line(error))
    latency = _ms_since(started)
    # The container answers one value per line, or comma-separated (older versions).
    values = [v for v in answer.replace(",", "\n").split() if v]
    try:
        if len(values) != records:
            raise ValueError(f"expected {records} scores, got {len(values)}")
        return Invocation(tuple(float(v) for v in values), records, latency)
    except ValueError as error:
        return Invocation(None, records, latency, f"unreadable answer {answer[:80]!r}: {error}")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
