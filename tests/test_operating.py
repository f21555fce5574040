"""The operating point as fraud operations see it: alerts, recall at the champion's alert
volume, fraud amount caught, cost; the gates on them; few frauds; the headline."""

from __future__ import annotations

import numpy as np
import pytest

from bot.core import comparison as cmp
from bot.core.comparison import MIN_FRAUDS, paired
from bot.core.cost import Cost
from bot.core.domain import Champion
from bot.core.request import Gates
from bot.core.resampling import Costs, _Cells
from bot.core.training import Scores
from bot.flows.judge import Judgement, judge_scores

CHAMPION = Champion("champion", "test", {})


def margins(rows: int, seed: int, fraud_rate: float = 0.01
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, amounts and two equal models' margins: the same signal, independent noise."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < fraud_rate).astype(np.int64)
    signal = rng.normal(0, 1, rows) + labels * rng.uniform(2.0, 6.0, rows)
    champion = signal + rng.normal(0, 0.3, rows) - 4.5
    candidate = signal + rng.normal(0, 0.3, rows) - 4.5
    amounts = np.round(rng.lognormal(3.5, 1.2, rows), 2)
    return labels, amounts, np.round(champion, 2), np.round(candidate, 2)  # ties, as trees make


def scores(margin: np.ndarray) -> Scores:
    return Scores(probability=1 / (1 + np.exp(-margin)), ranking=margin)


def judged(gates: Gates, labels: np.ndarray, candidate: np.ndarray, champion: np.ndarray,
           amounts: np.ndarray | None = None) -> Judgement:
    return judge_scores(gates, labels, scores(candidate), CHAMPION, scores(champion), amounts)


def failing(judgement: Judgement) -> list[str]:
    return [g.kind for g in judgement.gates if not g.passed]


# --- the values, checked against a direct computation on the resampled rows -------------


def top_k_frauds(labels: np.ndarray, ranking: np.ndarray, k: float) -> float:
    """Frauds among the k highest-ranked rows, ties at the cut shared (expected value)."""
    if k <= 0:
        return 0.0
    cut = np.sort(ranking)[::-1][int(np.ceil(k)) - 1]
    above, tied = ranking > cut, ranking == cut
    share = (k - above.sum()) / tied.sum()
    return float(labels[above].sum() + share * labels[tied].sum())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_resample_s_operating_point_is_what_the_resampled_rows_give(seed: int) -> None:
    labels, amounts, champion, candidate = margins(4_000, seed)
    candidate = candidate + 1.0  # flags more than the champion
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    drawn = np.concatenate([rng.choice(positives, positives.size),
                            rng.choice(negatives, negatives.size)])
    times = np.bincount(drawn, minlength=labels.size)
    flagged = (candidate >= 0, champion >= 0)
    cells = _Cells.build(labels, (candidate, champion), 0.0, flagged)
    weights = times[positives][None, :]
    counts = np.bincount(cells.negative_cell, weights=times[negatives],
                         minlength=cells.counts.size)[None, :]

    ours = cells.operating(weights, counts, amounts[positives], Costs(5.0, 1.0))

    rows = np.repeat(np.arange(labels.size), times)  # the resample, row by row
    y, a = labels[rows], amounts[rows]
    alerts = [float(f[rows].sum()) for f in flagged]
    caught = [float((f[rows] & (y == 1)).sum()) for f in flagged]
    amount = [float(a[f[rows] & (y == 1)].sum()) for f in flagged]
    for k, ranking in enumerate((candidate, champion)):
        mine = {name: float(pair[k][0]) for name, pair in ours.items()}
        assert mine["alerts_per_100k"] == pytest.approx(alerts[k] / rows.size * 100_000)
        assert mine["alerts_per_fraud_caught"] == pytest.approx(alerts[k] / caught[k])
        assert mine["recall_at_champion_alerts"] == pytest.approx(
            top_k_frauds(y, ranking[rows], alerts[1]) / y.sum())
        assert mine["fraud_amount_caught"] == pytest.approx(amount[k] / a[y == 1].sum())
        missed = a[y == 1].sum() - amount[k]
        assert mine["cost_per_100k"] == pytest.approx(
            (5.0 * alerts[k] + missed) / rows.size * 100_000)


def test_the_champion_s_recall_at_its_own_alert_volume_is_its_recall() -> None:
    labels, amounts, champion, candidate = margins(20_000, 0)

    result = paired(labels, *(1 / (1 + np.exp(-m)) for m in (candidate, champion)),
                    ranking=(candidate, champion), amounts=amounts, n_boot=50)

    at_volume = result.operating["recall_at_champion_alerts"]
    assert at_volume.baseline == pytest.approx(result.metrics["recall"].baseline)


def test_without_amounts_there_is_no_fraud_amount_and_no_cost() -> None:
    labels, _, champion, candidate = margins(20_000, 0)

    result = paired(labels, *(1 / (1 + np.exp(-m)) for m in (candidate, champion)),
                    ranking=(candidate, champion), costs=Costs(5.0, 1.0), n_boot=50)

    assert set(result.operating) == {"alerts_per_100k", "alerts_per_fraud_caught",
                                     "recall_at_champion_alerts"}


# --- over-flagging is blocked, an equal candidate passes -----------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_over_flagging_candidate_is_blocked_by_the_default_gates(seed: int) -> None:
    labels, amounts, champion, _ = margins(20_000, seed)
    raised = champion + 2.0  # the champion's ranking, every margin raised

    result = judged(Gates(), labels, raised, champion, amounts)

    alerts = result.comparison.operating["alerts_per_100k"]
    assert alerts.current >= 3 * alerts.baseline  # it flags several times as many
    assert result.evaluation.metrics["recall"] > result.champion.metrics["recall"]
    assert "max_alert_increase" in failing(result)
    gate = next(g for g in result.gates if g.kind == "max_alert_increase")
    assert gate.ci_low is not None and gate.ci_low > 0.15 and gate.point is not None
    assert gate.point == pytest.approx(alerts.current / alerts.baseline - 1)
    # Allowed only the champion's number of alerts, it catches what the champion catches.
    at_volume = result.comparison.operating["recall_at_champion_alerts"]
    assert at_volume.difference == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_equal_candidate_passes_the_default_gates(seed: int) -> None:
    labels, amounts, champion, candidate = margins(20_000, seed)

    result = judged(Gates(), labels, candidate, champion, amounts)

    assert failing(result) == []
    gate = next(g for g in result.gates if g.kind == "max_alert_increase")
    assert gate.ci_low is not None and gate.ci_high is not None and gate.ci_low <= 0.15


def test_a_request_can_accept_more_alerts() -> None:
    labels, amounts, champion, _ = margins(20_000, 0)

    result = judged(Gates(max_alert_increase=20), labels, champion + 2.0, champion, amounts)

    assert failing(result) == []


def test_the_shipped_request_gates_on_alerts() -> None:
    from pathlib import Path

    from bot.adapters.request_files import load_request

    request, _ = load_request(Path(__file__).parents[1] / "promotion-requests"
                              / "fraud-detection.yaml")
    labels, amounts, champion, _ = margins(20_000, 0)

    result = judged(request.gates, labels, champion + 2.0, champion, amounts)

    assert "max_alert_increase" in failing(result)


# --- cost ---------------------------------------------------------------------------------


def test_a_cost_gate_blocks_a_candidate_that_costs_more() -> None:
    labels, amounts, champion, candidate = margins(20_000, 0)
    cost = Cost(per_alert=50.0, per_missed_fraud_dollar=1.0, max_increase=0.10)
    gates = Gates(max_alert_increase=100, cost=cost)

    dear = judged(gates, labels, champion + 2.0, champion, amounts)
    same = judged(gates, labels, candidate, champion, amounts)

    expected = dear.comparison.operating["cost_per_100k"]
    assert expected.relative and expected.current > expected.baseline
    assert failing(dear) == ["max_cost_increase"]
    assert failing(same) == []


def test_a_cost_gate_without_amounts_says_not_available() -> None:
    labels, _, champion, candidate = margins(20_000, 0)
    gates = Gates(cost=Cost(per_alert=5.0, non_inferior=0.05))

    result = judged(gates, labels, candidate, champion)

    gate = next(g for g in result.gates if g.kind == "cost_non_inferior")
    assert not gate.passed and "no Amount column" in gate.detail


def test_a_request_with_no_cost_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing costs"):
        Cost(per_alert=0, per_missed_fraud_dollar=0)


# --- few frauds -----------------------------------------------------------------------------


def few(frauds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, _, champion, candidate = margins(40_000, 5)
    positives = np.flatnonzero(labels == 1)
    caught_first = positives[np.argsort(-champion[positives], kind="stable")]  # guard passes
    keep = np.concatenate([caught_first[:frauds], np.flatnonzero(labels == 0)[:20_000]])
    return labels[keep], champion[keep], candidate[keep]


@pytest.mark.parametrize("frauds", [2, 5, 17, MIN_FRAUDS - 1])
def test_below_the_minimum_no_interval_no_verdict_and_the_gates_fail(frauds: int) -> None:
    labels, champion, candidate = few(frauds)

    result = judged(Gates(), labels, candidate, champion)

    assert all(m.verdict == "not tested" and m.ci_low is None and m.detectable is None
               for m in (*result.comparison.metrics.values(),
                         *result.comparison.operating.values()))
    against = [g for g in result.gates if g.kind in ("max_drop", "max_alert_increase")]
    assert against and all(not g.passed for g in against)
    assert all(f"not tested: {frauds} frauds in the test set, need {MIN_FRAUDS}" in g.detail
               for g in against)


def test_at_the_minimum_verdicts_are_given() -> None:
    labels, champion, candidate = few(MIN_FRAUDS)

    result = judged(Gates(), labels, candidate, champion)

    assert all(m.verdict != "not tested" for m in result.comparison.metrics.values())


def test_a_request_may_accept_few_frauds_and_the_plan_says_so() -> None:
    labels, champion, candidate = few(5)
    reason = "shadow test on a new market, 5 frauds so far"

    result = judged(Gates(accept_few_frauds=reason), labels, candidate, champion)

    assert result.passed
    assert all(g.warning for g in result.gates if g.kind in ("max_drop", "max_alert_increase"))
    assert any(reason in note for note in result.notes)


def test_better_than_champion_cannot_be_accepted_without_a_verdict() -> None:
    labels, champion, candidate = few(5)
    gates = Gates(accept_few_frauds="shadow test on a new market",
                  better_than_champion=["pr_auc"])

    result = judged(gates, labels, candidate, champion)

    assert failing(result) == ["better_than_champion"]


def test_a_power_note_never_says_it_detects_zero() -> None:
    from bot.core.domain import GateResult
    from bot.core.power import power_note

    gate = GateResult(name="x", threshold=-0.01, value=0.0, passed=True, kind="max_drop",
                      metric="auc_roc", detectable=0.0001)

    note = power_note(gate)

    assert note is not None and "0.000" not in note and "below 0.001" in note


def test_too_few_is_one_sentence() -> None:
    assert cmp.too_few(1, 30) == ("not tested: 1 fraud in the test set, need 30 for an "
                                  "interval that holds")


def test_feature_columns_must_be_distinct_names() -> None:
    from bot.core.request import Data

    with pytest.raises(ValueError, match="names a column twice: V1"):
        Data(train="t.parquet", test="t.parquet", feature_columns=["V1", "V2", "V1"])
    assert Data(train="t.parquet", test="t.parquet",
                feature_columns=["V2", "V1"]).feature_columns == ["V2", "V1"]
