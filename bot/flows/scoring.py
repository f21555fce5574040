"""The test set scored in one streaming pass: labels and scores kept, never the table.

The candidate and the champion are scored batch by batch from the same read, so peak memory
grows with the test rows at 9 bytes a row (a label and two float32 scores) plus one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import BotError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class Scored:
    """The test set's labels and each model's scores, row for row."""

    labels: npt.NDArray[np.int8]
    candidate: npt.NDArray[np.float32]
    champion: npt.NDArray[np.float32] | None


def score_test_set(
    uri: str, repo_root: Path, target_column: str, candidate: Any, champion: Any = None,
) -> Scored:
    """Score ``uri`` with the candidate (and the champion) in record batches.

    Each model reads its own features by name, in its own order (a model without names
    reads the table's columns but the target, in the table's order).
    """
    import numpy as np

    from bot.adapters import data_files as data
    from bot.core import training

    models = [model for model in (candidate, champion) if model is not None]
    with data.local_copy(uri, repo_root) as path:
        table = data.ParquetTable(path, uri, target_column)
        fallback = table.features(target_column)
        features = [list(model.feature_names or fallback) for model in models]
        columns = list(dict.fromkeys([target_column, *(n for names in features for n in names)]))
        labels: list[npt.NDArray[np.int8]] = []
        scores: list[list[npt.NDArray[np.float32]]] = [[] for _ in models]
        for frame in table.frames(columns, training.BATCH_ROWS):
            labels.append(_labels(frame[target_column].to_numpy(), uri, target_column))
            for index, model in enumerate(models):
                scores[index].append(
                    training.score(model, frame, features[index]).astype(np.float32))
    if not labels:
        raise BotError(f"{uri}: the test data has no rows")
    joined = [np.concatenate(parts) for parts in scores]
    return Scored(np.concatenate(labels), joined[0], joined[1] if champion is not None else None)


def _labels(values: Any, uri: str, target_column: str) -> npt.NDArray[np.int8]:
    import numpy as np

    if not np.isin(values, (0, 1)).all():
        raise BotError(f"{uri}: the target column {target_column!r} must hold 0 (legit) and "
                       "1 (fraud) only")
    return np.asarray(values).astype(np.int8)
