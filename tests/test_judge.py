"""The code path plan and compare share: each model scored on its own columns."""

from __future__ import annotations

from conftest import small_frame, small_params

from bot.core import training
from bot.core.domain import Champion
from bot.core.request import Gates
from bot.flows.judge import judge

RECORDED = {"accuracy": 0.9, "recall": 0.7, "auc_roc": 0.9}


def test_a_dropped_column_falls_back_to_the_recorded_metrics_and_says_which() -> None:
    train, test = small_frame(2_000, 1), small_frame(1_000, 2)
    champion = training.train(small_params(10, 3), train, "Class")
    candidate = training.train(small_params(10, 3), train.drop(columns=["V1"]), "Class")

    judged = judge(Gates(), test.drop(columns=["V1"]), "Class", candidate,
                   Champion("exp-old", "production-config", RECORDED, "s3://m/old"), champion)

    assert judged.comparison.paired is False and judged.champion_evaluation is None
    assert set(judged.comparison.metrics) == set(RECORDED)
    assert all(m.verdict == "not tested" for m in judged.comparison.metrics.values())
    (note,) = [n for n in judged.notes if n.startswith("Feature set changed")]
    assert "the candidate drops column `V1`" in note
    assert "lacks the champion's column `V1`" in note and "unpaired" in note


def test_the_same_columns_compare_paired_without_a_note() -> None:
    train, test = small_frame(2_000, 1), small_frame(1_000, 2)
    champion = training.train(small_params(10, 3), train, "Class")
    candidate = training.train(small_params(20, 3), train, "Class")

    judged = judge(Gates(), test, "Class", candidate,
                   Champion("exp-old", "production-config", RECORDED), champion)

    assert judged.comparison.paired is True
    assert judged.champion.metrics == judged.champion_evaluation.metrics  # type: ignore[union-attr]
    assert not any(n.startswith("Feature set changed") for n in judged.notes)
    assert judged.gates[0].kind == "guard"
