"""Data a model cannot be trained or judged on is refused before training, one line per problem."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import small_frame

from bot import cli
from bot.core.data_checks import check_table
from bot.settings import Target


def problems(frame: pd.DataFrame, target: str = "Class") -> list[str]:
    return [str(p) for p in check_table(frame, target, "data/train.parquet")]


def test_good_data_has_no_problem_and_missing_features_are_allowed() -> None:
    frame = small_frame(50, 0)
    frame.loc[3, "V2"] = np.nan  # XGBoost reads NaN as missing, as the container does
    assert problems(frame) == []
    assert problems(frame.assign(Class=frame["Class"].astype(bool))) == []


def test_each_problem_is_one_line_naming_file_field_and_reason() -> None:
    frame = small_frame(50, 0)
    assert problems(frame.head(0)) == [
        "data/train.parquet: (rows): the table has no rows: a model cannot be trained or "
        "evaluated on nothing"]
    assert problems(frame.assign(Class=0)) == [
        "data/train.parquet: Class: all 50 rows are 0 (legit): a model needs both classes to "
        "be trained and evaluated"]
    assert problems(frame.assign(Class=np.where(frame["Class"] == 1, "fraud", "legit"))) == [
        "data/train.parquet: Class: labels must be the numbers 0 (legit) and 1 (fraud), not "
        "text such as 'fraud', 'legit'; is 'Class' the label? (data.target_column)"]
    with_inf = frame.copy()
    with_inf.loc[[1, 4], "V3"] = [np.inf, -np.inf]
    assert problems(with_inf) == [
        "data/train.parquet: V3: 2 row(s) hold an infinite value; replace them (leave a value "
        "empty for missing)"]
    unlabelled = frame.assign(Class=frame["Class"].astype(float))
    unlabelled.loc[0, "Class"] = np.nan
    assert problems(unlabelled) == ["data/train.parquet: Class: 1 row(s) have no label"]


def test_a_column_that_is_not_the_label_is_named_as_the_likely_mistake() -> None:
    frame = small_frame(50, 0).assign(Time=np.arange(50) * 2.5)
    [line] = problems(frame, "Time")
    assert line == ("data/train.parquet: Time: labels must be 0 (legit) or 1 (fraud), found "
                    "2.5, 5, 7.5, 10, 12.5 and 44 more; is 'Time' the label? "
                    "(data.target_column)")


REQUEST = """experiment_id: exp-local-data
algorithm: xgboost
hyperparameters:
  objective: binary:logistic
  num_round: 5
  max_depth: 3
  eta: 0.3
  subsample: 1.0
  colsample_bytree: 1.0
data:
  train: data/train.parquet
  test: data/test.parquet
  target_column: {target}
"""


def bad_train(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.head(0)


def one_class(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(Class=0)


def text_labels(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(Class=np.where(frame["Class"] == 1, "fraud", "legit"))


def infinite(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[0, "Amount"] = np.inf
    return frame


def unchanged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


@pytest.mark.parametrize(("train", "test", "target", "expected"), [
    (bad_train, unchanged, "Class", "data/train.parquet: (rows): the table has no rows"),
    (one_class, unchanged, "Class", "data/train.parquet: Class: all 400 rows are 0 (legit)"),
    (text_labels, unchanged, "Class", "data/train.parquet: Class: labels must be the numbers"),
    (unchanged, infinite, "Class", "data/test.parquet: Amount: 1 row(s) hold an infinite"),
    (unchanged, unchanged, "Time", "data/train.parquet: Time: labels must be 0 (legit) or 1"),
], ids=["empty", "single-class", "text-labels", "inf-in-test", "time-as-label"])
def test_plan_refuses_data_it_cannot_train_or_judge_on(
        aws: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        train: Callable[[pd.DataFrame], pd.DataFrame],
        test: Callable[[pd.DataFrame], pd.DataFrame], target: str, expected: str) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "promotion-requests").mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    train(small_frame(400, 1)).to_parquet(repo / "data" / "train.parquet", index=False)
    test(small_frame(200, 2)).to_parquet(repo / "data" / "test.parquet", index=False)
    path = repo / "promotion-requests" / "fraud-detection.yaml"
    path.write_text(REQUEST.format(target=target))

    code = cli.main(["plan", str(path), "--no-github", "--out", str(tmp_path / "out")])

    err: Any = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and "base_score" not in err
    assert any(line.startswith(expected) for line in err.splitlines()), err
    assert not (tmp_path / "out" / "plan.json").exists()
