"""XGBoost training, the ``model.tar.gz`` that SageMaker serves, loading and scoring.

The artifact is what the SageMaker XGBoost container that trains and serves
(``bot.adapters.aws.images``, 3.0-5: xgboost 3.0.5) loads: a gzipped tar holding one file,
``xgboost-model``. The container unpickles it or else calls ``Booster.load_model`` on it,
which reads JSON or UBJSON by the first byte
(https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost-how-to-use.html,
https://github.com/aws/sagemaker-xgboost-container). The model is JSON, with one repair:
xgboost 3.1 and later write ``base_score`` as a vector (``"[1.7E-3]"``) that xgboost 3.0
(and 1.7) do not parse and silently replace by 0.5, shifting every prediction; a
single-target model's vector is written back as the scalar that every version reads. A
training job's own output (xgboost 3.0's, scalar already) is read and written out here too,
so every stored model has this one format.

Training builds a ``QuantileDMatrix`` (the histogram bins ``hist`` trains on): from a whole
frame in one pass (``train``), or from data read batch by batch (``train_batches``), so that
memory holds the binned data, about one byte per value, never the table itself. A table of
one batch or less trains exactly as it would in one piece.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bot.errors import BotError, first_line

if TYPE_CHECKING:
    import pandas as pd
    import xgboost

MODEL_FILE = "xgboost-model"
SEED = 0
#: Rows read, binned and scored at a time: memory per batch, not per table.
BATCH_ROWS = 65_536

#: One pass over the training data: (features, labels) per batch. Training calls it more than
#: once (binning needs the data twice), so each call must start from the first batch again.
Batches = Callable[[], Iterable[tuple["pd.DataFrame", "npt.NDArray[Any]"]]]
# A one-element base_score vector, "[1.7E-3]", as xgboost 3 writes it.
_SINGLE_BASE_SCORE = re.compile(rb'"base_score"\s*:\s*"\[([^\],]*)\]"')


def feature_columns(frame: pd.DataFrame, target_column: str) -> list[str]:
    """The model's inputs: every column of the data but the target, in the data's order."""
    return [str(c) for c in frame.columns if c != target_column]


def train(
    hyperparameters: Mapping[str, str | int | float],
    train_df: pd.DataFrame,
    target_column: str,
) -> xgboost.Booster:
    """Train a booster with the request's hyperparameters, deterministically.

    ``num_round`` is the number of boosting rounds, as in SageMaker and SSM; every other
    name is passed to xgboost as it is (SSM's string values included).
    """
    import xgboost  # lazy: ~1 s to import, only when a model is trained, read or scored

    if target_column not in train_df.columns:
        raise BotError(f"the training data has no target column {target_column!r}")
    if len(train_df) == 0:
        raise BotError("the training data has no rows")
    features = feature_columns(train_df, target_column)
    return _train(hyperparameters, lambda nthread: xgboost.QuantileDMatrix(
        train_df[features], label=train_df[target_column].to_numpy(), nthread=nthread))


def train_batches(
    hyperparameters: Mapping[str, str | int | float], batches: Batches
) -> xgboost.Booster:
    """Train on data read batch by batch (``Batches``): what ``train`` makes of the whole
    table, in memory for the binned data only (the bins' edges may differ slightly once the
    data is more than one batch)."""
    import xgboost  # lazy: ~1 s to import, only when a model is trained, read or scored

    return _train(hyperparameters, lambda nthread: xgboost.QuantileDMatrix(
        _batch_iterator(batches), nthread=nthread))


def _train(hyperparameters: Mapping[str, str | int | float],
           matrix_of: Callable[[int], xgboost.QuantileDMatrix]) -> xgboost.Booster:
    """Train on the matrix ``matrix_of(nthread)`` builds, with the request's hyperparameters."""
    import xgboost  # lazy: ~1 s to import, only when a model is trained, read or scored

    params: dict[str, str | int | float] = {
        "tree_method": "hist",
        "seed": SEED,
        "nthread": os.cpu_count() or 1,
        "verbosity": 1,
    }
    params.update(hyperparameters)
    rounds = int(float(params.pop("num_round", 100)))
    try:
        # QuantileDMatrix bins the data once for ``hist``: the same model as DMatrix, less memory.
        return xgboost.train(params, matrix_of(int(params["nthread"])), num_boost_round=rounds)
    except (xgboost.core.XGBoostError, ValueError, TypeError) as error:
        raise BotError(f"xgboost refused the hyperparameters or data: {first_line(error)}") \
            from error


def _batch_iterator(batches: Batches) -> Any:
    """An ``xgboost.DataIter`` over ``batches``, starting again from the first on reset."""
    import xgboost  # lazy: ~1 s to import, only when a model is trained, read or scored

    class BatchIterator(xgboost.DataIter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._batches: Any = None
            self._rows = 0

        def next(self, input_data: Callable[..., None]) -> bool:
            if self._batches is None:
                self._batches = iter(batches())
                self._rows = 0
            for features, labels in self._batches:
                if len(labels):
                    self._rows += len(labels)
                    input_data(data=features, label=labels)
                    return True
            if self._rows == 0:
                raise BotError("the training data has no rows")
            return False

        def reset(self) -> None:
            self._batches = None

    return BatchIterator()


def package_model(booster: xgboost.Booster) -> bytes:
    """``model.tar.gz`` for the SageMaker XGBoost container; the same booster, the same bytes."""
    payload = _SINGLE_BASE_SCORE.sub(rb'"base_score":"\1"', bytes(booster.save_raw("json")), 1)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(MODEL_FILE)
        info.size = len(payload)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def load_model(data: bytes) -> xgboost.Booster:
    """The booster in a ``model.tar.gz`` made by ``package_model`` (or by SageMaker training)."""
    import xgboost  # lazy: ~1 s to import, only when a model is trained, read or scored

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            member = next((m for m in tar.getmembers()
                           if m.isfile() and m.name.lstrip("./") == MODEL_FILE), None)
            if member is None:
                raise BotError(f"model.tar.gz has no {MODEL_FILE} file")
            stream = tar.extractfile(member)
            raw = stream.read() if stream is not None else b""
    except (tarfile.TarError, EOFError, OSError) as error:
        raise BotError(f"not a model.tar.gz: {error}") from error
    if raw and raw.lstrip()[:1] != b"{":
        # Both JSON and UBJSON start with "{"; xgboost 1.x's default format does not.
        raise BotError(
            f"{MODEL_FILE} is in xgboost's legacy binary format (what SageMaker's XGBoost 1.7 "
            "algorithm writes), which xgboost 3.1 and later cannot read: train with the 3.0-5 "
            "image or later"
        )
    booster = xgboost.Booster()
    try:
        booster.load_model(bytearray(raw))
    except xgboost.core.XGBoostError as error:
        raise BotError(f"{MODEL_FILE} is not an xgboost model: {first_line(error)}") from error
    return booster


def load_model_file(data: bytes, name: str) -> xgboost.Booster:
    """A model file as a data scientist has it: the bot's ``model.tar.gz`` (or SageMaker's),
    or an XGBoost model saved as JSON or UBJSON."""
    import xgboost  # lazy: ~1 s to import, only when a model is trained, read or scored

    if data[:2] == b"\x1f\x8b" or data[257:262] == b"ustar":  # gzip, or a plain tar
        try:
            return load_model(data)
        except BotError as error:
            raise BotError(f"{name}: {error.message}") from error
    booster = xgboost.Booster()
    try:
        booster.load_model(bytearray(data))
    except (xgboost.core.XGBoostError, ValueError) as error:  # UnicodeDecodeError too
        raise BotError(f"{name}: neither a model.tar.gz nor an XGBoost JSON or UBJSON model "
                       f"({first_line(error)})") from error
    return booster


@dataclass(frozen=True)
class Scores:
    """A model's answers for each row, in float64.

    ``probability`` is the probability of fraud, compared with the decision threshold for
    the threshold metrics (what the SageMaker container answers). ``ranking`` orders the
    rows for ROC and PR AUC and the curves: the raw margin (log-odds), which keeps apart
    rows whose float32 probabilities round to the same value (a confident model's
    probabilities collapse to 0.0 or 1.0, or to one denormal, in float32).
    """

    probability: npt.NDArray[np.float64]
    ranking: npt.NDArray[np.float64]


def predict(
    booster: xgboost.Booster,
    frame: pd.DataFrame,
    feature_columns: Sequence[str] | None = None,
) -> Scores:
    """Probabilities and margins of each row, from the booster's features in its order."""
    features = model_features(booster, list(frame.columns), feature_columns)
    import xgboost  # lazy: ~1 s to import, only when a model is trained, read or scored

    booster.set_param({"nthread": os.cpu_count() or 1})
    try:
        margin = np.asarray(
            booster.inplace_predict(frame[features], predict_type="margin"), dtype=np.float64
        )
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        if objective == "binary:hinge":  # answers 0 or 1; the margin still ranks
            probability = np.asarray(
                booster.inplace_predict(frame[features], predict_type="value"), dtype=np.float64
            )
        else:
            with np.errstate(over="ignore"):
                probability = 1.0 / (1.0 + np.exp(-margin))
    except (xgboost.core.XGBoostError, ValueError, TypeError) as error:
        raise BotError(f"the model cannot score this data: {first_line(error)}") from error
    return Scores(probability=probability, ranking=margin)


def name_features(booster: xgboost.Booster, names: Sequence[str]) -> xgboost.Booster:
    """Give a booster trained on unnamed columns (SageMaker's algorithm) its feature names."""
    if booster.num_features() != len(names):
        raise BotError(f"the model has {booster.num_features()} features, the training data "
                       f"{len(names)}")
    booster.feature_names = [str(name) for name in names]
    return booster


def score(
    booster: xgboost.Booster,
    frame: pd.DataFrame,
    feature_columns: Sequence[str] | None = None,
) -> npt.NDArray[np.float64]:
    """The probability of fraud for each row (float64), from the booster's features."""
    return predict(booster, frame, feature_columns).probability


def model_features(
    booster: xgboost.Booster, columns: Sequence[str], feature_columns: Sequence[str] | None = None
) -> list[str]:
    """The columns a model reads, in its order: the names it was trained with, else those
    given; a clear error when the data's ``columns`` lack any of them."""
    features = list(booster.feature_names or feature_columns or [])
    if not features:
        raise BotError("the model has no feature names; name the feature columns")
    if len(features) != booster.num_features():
        raise BotError(f"the model reads {booster.num_features()} features, "
                       f"not the {len(features)} columns given")
    missing = [name for name in features if name not in columns]
    if missing:
        raise BotError(f"the data lacks the model's feature columns: {', '.join(missing[:10])}")
    return features
