"""The code path plan and compare share: each model scored on its own columns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_frame, small_params

from bot.adapters import data_files as data
from bot.adapters.data_files import ParquetTable
from bot.core import training
from bot.core.domain import Champion
from bot.core.request import Gates
from bot.errors import InvalidRequest
from bot.flows.judge import judge, judge_scores

RECORDED = {"accuracy": 0.9, "recall": 0.7, "auc_roc": 0.9}


@contextmanager
def table_of(frame: pd.DataFrame, directory: Path) -> Iterator[ParquetTable]:
    """``frame`` as the Parquet test table plan reads (several row groups)."""
    frame.to_parquet(directory / "test.parquet", index=False, row_group_size=300)
    with data.open_table("test.parquet", directory, "Class") as table:
        yield table


def test_a_dropped_column_falls_back_to_the_recorded_metrics_and_says_which(
        tmp_path: Path) -> None:
    train, test = small_frame(2_000, 1), small_frame(1_000, 2)
    champion = training.train(small_params(10, 3), train, "Class")
    candidate = training.train(small_params(10, 3), train.drop(columns=["V1"]), "Class")

    with table_of(test.drop(columns=["V1"]), tmp_path) as table:
        judged = judge(Gates(), table, "Class", candidate,
                       Champion("exp-old", "production-config", RECORDED, "s3://m/old"), champion)

    assert judged.comparison.paired is False and judged.champion_evaluation is None
    assert set(judged.comparison.metrics) == set(RECORDED)
    assert all(m.verdict == "not tested" for m in judged.comparison.metrics.values())
    (note,) = [n for n in judged.notes if n.startswith("Feature set changed")]
    assert "the candidate drops column `V1`" in note
    assert "lacks the champion's column `V1`" in note and "unpaired" in note


def test_the_same_columns_compare_paired_without_a_note(tmp_path: Path) -> None:
    train, test = small_frame(2_000, 1), small_frame(1_000, 2)
    champion = training.train(small_params(10, 3), train, "Class")
    candidate = training.train(small_params(20, 3), train, "Class")

    with table_of(test, tmp_path) as table:
        judged = judge(Gates(), table, "Class", candidate,
                       Champion("exp-old", "production-config", RECORDED), champion)

    assert judged.comparison.paired is True
    assert judged.champion.metrics == judged.champion_evaluation.metrics  # type: ignore[union-attr]
    assert not any(n.startswith("Feature set changed") for n in judged.notes)
    assert judged.gates[0].kind == "guard"


def test_scoring_in_batches_judges_as_scoring_the_whole_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, test = small_frame(2_000, 1), small_frame(1_000, 2)
    champion = training.train(small_params(10, 3), train.drop(columns=["V3"]), "Class")
    candidate = training.train(small_params(20, 3), train, "Class")
    recorded = Champion("exp-old", "production-config", RECORDED)
    whole = judge_scores(Gates(), test["Class"].to_numpy(), training.predict(candidate, test),
                         recorded, training.predict(champion, test))

    monkeypatch.setattr(training, "BATCH_ROWS", 128)  # 8 batches, across row groups
    with table_of(test, tmp_path) as table:
        streamed = judge(Gates(), table, "Class", candidate, recorded, champion)

    assert streamed.evaluation == whole.evaluation
    assert streamed.champion_evaluation == whole.champion_evaluation
    assert streamed.comparison == whole.comparison
    assert streamed.gates == whole.gates
    (note,) = [n for n in streamed.notes if n.startswith("Feature set changed")]
    assert "adds column `V3`" in note and "stays paired" in note


def test_a_bad_value_in_a_later_batch_is_refused_by_column_and_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, test = small_frame(2_000, 1), small_frame(1_000, 2)
    model = training.train(small_params(10, 3), train, "Class")
    test.loc[900, "V5"] = np.inf
    monkeypatch.setattr(training, "BATCH_ROWS", 128)

    with table_of(test, tmp_path) as table, pytest.raises(InvalidRequest) as refused:
        judge(Gates(), table, "Class", model, Champion("exp-old", "x", RECORDED), model)
    assert [str(p) for p in refused.value.problems] == [
        "test.parquet: V5: 1 row(s) hold an infinite value; replace them (leave a value empty "
        "for missing)"]
