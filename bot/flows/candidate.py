"""The candidate model of a request: reused from the store, trained here, or by a training job.

Whichever way, the result is the same: a booster with named features, stored (by model key)
as ``models/<model_key>/model.tar.gz`` in the format the serving container reads, so the
rest of plan and apply never know where it was trained.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.adapters import data_files as data
from bot.adapters.aws import artifacts
from bot.core import names, training
from bot.core.data_checks import check_features, check_table
from bot.core.integrity import sha256_hex
from bot.core.request import Request
from bot.errors import InvalidRequest
from bot.flows import sagemaker_training
from bot.settings import Target, settings

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    model_key: str
    booster: Any  # xgboost.Booster
    artifact: str  # s3:// URI of the model.tar.gz, stored or (see ``unstored``) to be
    trained: bool  # False when reused from the store
    training: dict[str, Any] | None  # how it was trained by this plan (None when reused)
    #: A model trained by this plan, not stored yet: its model.tar.gz, for ``store``.
    unstored: bytes | None = None

    def store(self, t: Target) -> None:
        """Store a newly trained model and its signed index entry (nothing when reused)."""
        if self.unstored is not None:
            artifacts.put_model(t, self.model_key, self.unstored)


def trainer(t: Target, request: Request) -> str | None:
    """What besides the request determines a training job's model: the algorithm image."""
    if request.training.backend == "local":
        return None
    return t.xgboost_container


def model_key(t: Target, request: Request, versions: dict[str, str]) -> str:
    """The model key of ``request`` trained on the data ``versions`` (``train``, ``test``)."""
    return request.model_key(versions, trainer(t, request))


def obtain(t: Target, request: Request, tables: data.RequestData, key: str,
           stored: bytes | None, progress: Progress, pull_request: int | None = None
           ) -> Candidate:
    """The request's model of model ``key`` (``model_key`` of its ``tables``): ``stored``,
    the one trained before for it (``artifacts.get_model``), else trained the way
    ``training.backend`` says, to be stored (``Candidate.store``) while it is evaluated."""
    if stored is not None:
        progress(f"reusing the model trained for {key[:12]} (same data and hyperparameters)")
        return Candidate(key, training.load_model(stored),
                         names.model_uri(t, sha256_hex(stored)), trained=False, training=None)
    if request.training.backend == "sagemaker":
        booster, how = sagemaker_training.train(t, request, tables.repo_root, key, progress,
                                                pull_request, tables.versions["train"])
    else:
        booster, how = train_locally(request, tables.table("train"), progress)
    package = training.package_model(booster)
    return Candidate(key, booster, names.model_uri(t, sha256_hex(package)), trained=True,
                     training=how, unstored=package)


def train_locally(request: Request, table: data.ParquetTable,
                  progress: Progress) -> tuple[Any, dict[str, Any]]:
    """Train in this process on the training ``table``: whole when it fits
    ``training_in_memory_mib``, else reading it a batch at a time."""
    uri, target_column = request.data.train, request.data.target_column
    progress(f"training xgboost on {uri} ...")
    started = time.monotonic()
    params = request.hyperparameters.as_dict()
    whole = table.rows * len(table.columns) * 8 <= settings().training_in_memory_mib * 2**20
    # The labels are checked whole (rows, 0/1, both classes), the features batch by batch.
    frame = table.read(table.columns if whole else [target_column])
    problems = check_table(frame, target_column, uri)
    if problems:
        raise InvalidRequest(problems)
    frauds = int(frame[target_column].sum())
    if whole:
        booster = training.train(params, frame, target_column)
    else:
        del frame
        features = table.features(target_column)

        def batches() -> Iterator[tuple[pd.DataFrame, npt.NDArray[Any]]]:
            for part in table.frames(table.columns, training.BATCH_ROWS):
                found = check_features(part, target_column, uri)
                if found:
                    raise InvalidRequest(found)
                yield part[features], part[target_column].to_numpy()

        booster = training.train_batches(params, batches)
    seconds = time.monotonic() - started
    progress(f"trained on {table.rows:,} rows in {seconds:.1f}s"
             + ("" if whole else f" (read in batches of {training.BATCH_ROWS:,})"))
    return booster, {"backend": "local", "rows": table.rows, "frauds": frauds,
                     "seconds": round(seconds, 1)}
