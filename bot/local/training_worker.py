"""One instance of the built-in XGBoost algorithm, as ``bot.local.training_runner`` runs it.

The steps are the algorithm's own in File mode (``sagemaker_xgboost_container``
``algorithm_mode/train.py`` and ``data_utils.py``, 3.0-5): hyperparameters from
``input/config/hyperparameters.json`` (strings; ``num_round`` required), the ``train``
channel's Parquet files read whole into one table whose first column is the label,
``DMatrix(data[:, 1:], label=data[:, 0])``, ``xgboost.train``; with several instances the
workers train one model together in XGBoost's collective (set up by the runner's tracker),
and only the first saves ``xgboost-model`` in the model directory. A failure is written to
``output/failure`` (SageMaker's ``FailureReason``) as ``ClientError: ...`` for bad input or
``AlgorithmError: ...`` for a failed training, and the process exits 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import xgboost
from xgboost import collective

PARQUET_TYPES = ("parquet", "application/x-parquet")


class ClientError(Exception):
    """Bad input: what the algorithm reports as a ClientError."""


def main() -> int:
    output = Path(os.environ["SM_OUTPUT_DIR"])
    try:
        train(Path(os.environ["SM_INPUT_DIR"]), Path(os.environ["SM_CHANNEL_TRAIN"]),
              Path(os.environ["SM_MODEL_DIR"]), os.environ.get("LOCAL_TRAINING_COLLECTIVE"))
    except ClientError as error:
        (output / "failure").write_text(f"ClientError: {error}")
        return 1
    except Exception as error:
        first = str(error).strip().splitlines()
        (output / "failure").write_text(
            "AlgorithmError: XGB train call failed with exception: "
            + (first[0] if first else type(error).__name__))
        return 1
    return 0


def train(input_dir: Path, channel: Path, model_dir: Path, collective_args: str | None) -> None:
    config = input_dir / "config"
    hyperparameters: dict[str, Any] = json.loads((config / "hyperparameters.json").read_text())
    data_config: dict[str, Any] = json.loads((config / "inputdataconfig.json").read_text())
    if "train" not in data_config:
        raise ClientError("Channel 'train' is required")
    content_type = str(data_config["train"].get("ContentType") or "").split(";")[0].strip()
    if content_type.lower() not in PARQUET_TYPES:
        raise ClientError(f"local-aws reads the content type application/x-parquet only, "
                          f"not {content_type or '(none)'}")
    params = dict(hyperparameters)
    if "num_round" not in params:
        raise ClientError("Missing required hyperparameter: num_round")
    rounds = int(float(params.pop("num_round")))
    matrix = parquet_dmatrix(channel)
    print(f"Train matrix has {matrix.num_row()} rows and {matrix.num_col()} columns", flush=True)
    if collective_args is None:
        booster = xgboost.train(params, matrix, num_boost_round=rounds)
        is_master = True
    else:
        with collective.CommunicatorContext(**json.loads(collective_args)):
            booster = xgboost.train(params, matrix, num_boost_round=rounds)
            is_master = collective.get_rank() == 0
    if is_master:
        # No extension: xgboost 3 writes UBJSON, as the 3.0-5 algorithm does.
        booster.save_model(str(model_dir / "xgboost-model"))


def parquet_dmatrix(channel: Path) -> Any:
    """The whole channel as one DMatrix, label in the first column (File mode, Parquet)."""
    files = sorted(p for p in channel.rglob("*")
                   if p.is_file() and not p.name.startswith((".", "_")))
    if not files:
        raise ClientError(f"No data in training channel path {channel}")
    try:
        frame = pq.read_table([str(p) for p in files]).to_pandas()
        data = frame.to_numpy() if isinstance(frame, pd.DataFrame) else frame
        del frame
        return xgboost.DMatrix(data[:, 1:], label=data[:, 0])
    except Exception as error:
        raise ClientError(f"Failed to load parquet data with exception:\n{error}") from error


if __name__ == "__main__":
    sys.exit(main())
