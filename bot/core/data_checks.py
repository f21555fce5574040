"""What training and test data must hold before a model is trained or judged on it (pure).

XGBoost trains on almost anything: an empty table, one class, a timestamp as the label.
The result then passes gates it should fail (ROC AUC 0.5 and recall 0 are "numbers"), or
fails with a message about ``base_score``. So the data is checked first, and every problem
is one ``PATH: FIELD: REASON`` line, like the problems of a request file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bot.errors import Problem

#: Distinct label values shown in a problem.
_SHOWN = 5


def check_table(frame: pd.DataFrame, target_column: str, path: str) -> list[Problem]:
    """Every problem of a training or test table: rows, the 0/1 label, numeric finite features.

    Missing feature values (NaN) are allowed: XGBoost treats them as missing, as the
    SageMaker container does for an empty CSV field. Infinities are not.
    """
    def problem(field: str, reason: str) -> Problem:
        return Problem(path, None, field, reason)

    if len(frame) == 0:
        return [problem("(rows)", "the table has no rows: a model cannot be trained or "
                                  "evaluated on nothing")]
    problems = []
    labels = frame[target_column]
    label_hint = f"is {target_column!r} the label? (data.target_column)"
    if not (pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels)):
        examples = ", ".join(repr(v) for v in pd.unique(labels.dropna())[:_SHOWN])
        problems.append(problem(target_column, f"labels must be the numbers 0 (legit) and 1 "
                                               f"(fraud), not {_kind(labels)} such as "
                                               f"{examples}; {label_hint}"))
    else:
        values = labels.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = int(np.isnan(values).sum())
        if missing:
            problems.append(problem(target_column, f"{missing:,} row(s) have no label"))
        present = values[~np.isnan(values)]
        others = np.unique(present[(present != 0) & (present != 1)])
        if others.size:
            shown = ", ".join(f"{v:g}" for v in others[:_SHOWN])
            more = f" and {others.size - _SHOWN:,} more" if others.size > _SHOWN else ""
            problems.append(problem(target_column, f"labels must be 0 (legit) or 1 (fraud), "
                                                   f"found {shown}{more}; {label_hint}"))
        elif not missing:
            positives = int(np.count_nonzero(present))
            if positives in (0, present.size):
                only = "0 (legit)" if positives == 0 else "1 (fraud)"
                problems.append(problem(target_column, f"all {present.size:,} rows are {only}: "
                                                       "a model needs both classes to be "
                                                       "trained and evaluated"))
    return problems + check_features(frame, target_column, path)


def check_features(frame: pd.DataFrame, target_column: str, path: str) -> list[Problem]:
    """The problems of the feature columns alone (numbers, finite): checked batch by batch
    when the table is read in batches."""
    def problem(field: str, reason: str) -> Problem:
        return Problem(path, None, field, reason)

    problems = []
    for column in frame.columns:
        if column == target_column:
            continue
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            problems.append(problem(str(column), f"features must be numbers, not "
                                                 f"{_kind(values)}"))
            continue
        infinite = int(np.isinf(values.to_numpy(dtype=np.float64, na_value=np.nan)).sum())
        if infinite:
            problems.append(problem(str(column), f"{infinite:,} row(s) hold an infinite "
                                                 "value; replace them (leave a value empty "
                                                 "for missing)"))
    return problems


def _kind(values: pd.Series) -> str:
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        return "text"
    return f"{values.dtype} values"
