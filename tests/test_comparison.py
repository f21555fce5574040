"""Candidate versus champion (6.4): paired bootstrap intervals, DeLong, unpaired values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from bot.core.comparison import (
    SEED_BASELINE,
    delong,
    detectable_difference,
    paired,
    unpaired,
    verdict,
)
from bot.core.domain import MetricComparison
from bot.core.evaluation import evaluate
from bot.core.request import METRICS
from bot.core.resampling import _Cells


def two_models(
    rows: int, seed: int = 0, fraud_rate: float = 0.02, gap: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' scores; the candidate separates the classes better by ``gap``."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < fraud_rate).astype(int)
    shared = rng.normal(0, 1, rows)  # both models see the same rows: their errors correlate
    signal = labels * rng.uniform(0.5, 2.5, rows)
    candidate = 1 / (1 + np.exp(-(shared + (1 + gap) * signal + rng.normal(0, 0.5, rows) - 3)))
    champion = 1 / (1 + np.exp(-(shared + signal + rng.normal(0, 0.5, rows) - 3)))
    return labels, np.round(candidate, 3), np.round(champion, 3)  # rounded: ties, as trees make


def test_point_values_are_the_evaluations() -> None:
    labels, candidate, champion = two_models(10_000)

    result = paired(labels, candidate, champion, threshold=0.4, n_boot=10)

    assert result.paired is True
    assert list(result.metrics) == list(METRICS)
    for model, side in ((candidate, "current"), (champion, "baseline")):
        expected = evaluate(labels, model, threshold=0.4).metrics
        for name in METRICS:
            assert getattr(result.metrics[name], side) == pytest.approx(expected[name], abs=1e-12)
    for compared in result.metrics.values():
        assert compared.difference == pytest.approx(compared.current - compared.baseline)
        assert compared.verdict == verdict((compared.ci_low, compared.ci_high))  # type: ignore[arg-type]


def interval(compared: MetricComparison) -> tuple[float, float]:
    assert compared.ci_low is not None and compared.ci_high is not None
    return compared.ci_low, compared.ci_high


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_resample_is_scored_exactly_as_sklearn_scores_the_resampled_rows(seed: int) -> None:
    labels, candidate, champion = two_models(3_000, seed=seed)
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    drawn = np.concatenate([rng.choice(positives, positives.size),
                            rng.choice(negatives, negatives.size)])
    times_drawn = np.bincount(drawn, minlength=labels.size)
    cells = _Cells.build(labels, (candidate, champion), threshold=0.5)
    weights = times_drawn[positives][None, :]
    counts = np.bincount(cells.negative_cell, weights=times_drawn[negatives],
                         minlength=cells.counts.size)[None, :]

    for k, scores in enumerate((candidate, champion)):
        ours = {name: float(v[0]) for name, v in cells.metrics(k, weights, counts).items()}
        flagged = scores >= 0.5
        assert ours["accuracy"] == pytest.approx(
            sk.accuracy_score(labels, flagged, sample_weight=times_drawn))
        assert ours["precision"] == pytest.approx(
            sk.precision_score(labels, flagged, sample_weight=times_drawn, zero_division=0))
        assert ours["recall"] == pytest.approx(
            sk.recall_score(labels, flagged, sample_weight=times_drawn))
        assert ours["f1_score"] == pytest.approx(
            sk.f1_score(labels, flagged, sample_weight=times_drawn))
        assert ours["auc_roc"] == pytest.approx(
            sk.roc_auc_score(labels, scores, sample_weight=times_drawn))
        assert ours["pr_auc"] == pytest.approx(
            sk.average_precision_score(labels, scores, sample_weight=times_drawn))


def test_identical_models_differ_by_zero_with_an_interval_around_zero() -> None:
    labels, candidate, _ = two_models(5_000)

    result = paired(labels, candidate, candidate.copy(), n_boot=200)

    for compared in result.metrics.values():
        assert compared.difference == 0
        assert compared.percent_change == 0
        assert compared.verdict == "inconclusive"
        assert compared.ci_low is not None and compared.ci_high is not None
        assert compared.ci_low <= 0 <= compared.ci_high
    assert result.metrics["auc_roc"].p_value == 1.0


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    labels, candidate, champion = two_models(300_000, seed=7, gap=0.15)
    truth = paired(labels, candidate, champion, n_boot=0)
    rng = np.random.default_rng(0)
    covered = dict.fromkeys(METRICS, 0)
    repetitions = 60

    for seed in range(repetitions):
        rows = rng.choice(labels.size, 5_000, replace=False)
        sample = paired(labels[rows], candidate[rows], champion[rows], n_boot=300, seed=seed)
        for name in METRICS:
            compared = sample.metrics[name]
            assert compared.ci_low is not None and compared.ci_high is not None
            covered[name] += compared.ci_low <= truth.metrics[name].difference <= compared.ci_high

    for name in METRICS:
        assert covered[name] / repetitions >= 0.85, (name, covered[name])


def test_the_interval_narrows_with_more_data() -> None:
    labels, candidate, champion = two_models(40_000, seed=3)

    small = paired(labels[:4_000], candidate[:4_000], champion[:4_000], n_boot=400)
    large = paired(labels, candidate, champion, n_boot=400)

    for name in METRICS:
        assert interval(large.metrics[name])[1] - interval(large.metrics[name])[0] \
            < 0.6 * (interval(small.metrics[name])[1] - interval(small.metrics[name])[0]), name


def test_a_clearly_better_candidate_has_an_interval_above_zero() -> None:
    labels, candidate, champion = two_models(20_000, seed=5, fraud_rate=0.01, gap=1.0)

    result = paired(labels, candidate, champion)

    for name in ("recall", "auc_roc", "pr_auc"):
        assert interval(result.metrics[name])[0] > 0, name
        assert result.metrics[name].verdict == "better"
    assert (result.metrics["auc_roc"].p_value or 1.0) < 0.001
    swapped = paired(labels, champion, candidate)
    for name in ("recall", "auc_roc", "pr_auc"):
        assert swapped.metrics[name].verdict == "worse", name


@pytest.mark.parametrize(("ci", "expected"), [
    ((0.001, 0.2), "better"), ((-0.2, -0.001), "worse"), ((-0.1, 0.1), "inconclusive"),
    ((0.0, 0.1), "inconclusive"), ((0.0, 0.0), "inconclusive"), (None, "not tested"),
])
def test_the_verdict_reads_where_the_interval_lies(
    ci: tuple[float, float] | None, expected: str
) -> None:
    assert verdict(ci) == expected


def test_the_standard_error_is_the_spread_of_the_difference() -> None:
    labels, candidate, champion = two_models(10_000, seed=2)

    result = paired(labels, candidate, champion, n_boot=1_000)

    _, _, variance = delong(labels, candidate, champion)
    assert result.metrics["auc_roc"].se == pytest.approx(np.sqrt(variance))
    for name in METRICS:
        compared = result.metrics[name]
        low, high = interval(compared)
        assert compared.se is not None and compared.se > 0
        # For a roughly normal difference the 95 % interval spans about 4 standard errors.
        assert 2.5 * compared.se < high - low < 5.5 * compared.se, name
    assert detectable_difference(0.01) == pytest.approx(0.028, abs=1e-4)


def test_ranking_comes_from_the_margins_when_probabilities_saturate() -> None:
    # A confident model's float32 probabilities collapse to one value; its margins do not.
    labels, candidate, champion = two_models(5_000, seed=6)
    margins = np.log(candidate + 1e-3) - 40.0  # far below 0: probabilities underflow
    saturated = np.full(labels.size, 3e-39)

    plain = paired(labels, saturated, champion, n_boot=100)
    ranked = paired(labels, saturated, champion, n_boot=100, ranking=(margins, champion))

    assert plain.metrics["auc_roc"].current == 0.5
    assert ranked.metrics["auc_roc"].current == pytest.approx(sk.roc_auc_score(labels, margins))
    assert ranked.metrics["pr_auc"].current == pytest.approx(
        sk.average_precision_score(labels, margins))
    assert ranked.metrics["recall"].current == 0.0  # the threshold metrics read probabilities
    assert evaluate(labels, saturated, 0.5, ranking=margins).metrics["auc_roc"] == \
        pytest.approx(ranked.metrics["auc_roc"].current)


def test_delong_matches_its_definition() -> None:
    # DeLong, DeLong & Clarke-Pearson (1988), from the pairwise comparisons themselves.
    labels, candidate, champion = two_models(1_500, seed=11, fraud_rate=0.1)
    pos, neg = labels == 1, labels == 0
    components = []
    for scores in (candidate, champion):
        kernel = (scores[pos][:, None] > scores[neg][None, :]) \
            + 0.5 * (scores[pos][:, None] == scores[neg][None, :])
        components.append((kernel.mean(), kernel.mean(axis=1), kernel.mean(axis=0)))
    m, n = pos.sum(), neg.sum()
    s10 = np.cov(np.vstack([components[0][1], components[1][1]]))
    s01 = np.cov(np.vstack([components[0][2], components[1][2]]))
    covariance = s10 / m + s01 / n
    expected_variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]

    auc_a, auc_b, variance = delong(labels, candidate, champion)

    assert auc_a == pytest.approx(components[0][0], abs=1e-12)
    assert auc_b == pytest.approx(components[1][0], abs=1e-12)
    assert auc_a == pytest.approx(sk.roc_auc_score(labels, candidate), abs=1e-12)
    assert variance == pytest.approx(expected_variance, rel=1e-9)


def test_delong_and_the_bootstrap_agree_on_the_spread_of_the_auc_difference() -> None:
    labels, candidate, champion = two_models(10_000, seed=2)
    _, _, variance = delong(labels, candidate, champion)
    cells = _Cells.build(labels, (candidate, champion), 0.5)
    rng = np.random.default_rng(0)
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    weights = rng.multinomial(n_pos, np.full(n_pos, 1 / n_pos), size=1_000)
    counts = rng.multinomial(n_neg, cells.counts / n_neg, size=1_000)
    differences = (cells.metrics(0, weights, counts)["auc_roc"]
                   - cells.metrics(1, weights, counts)["auc_roc"])

    assert differences.std() == pytest.approx(np.sqrt(variance), rel=0.15)


def test_delong_p_value_agrees_with_its_interval() -> None:
    labels, candidate, champion = two_models(20_000, seed=4, gap=0.2)

    auc = paired(labels, candidate, champion, n_boot=0).metrics["auc_roc"]

    low, high = interval(auc)
    assert auc.p_value is not None
    assert (auc.p_value < 0.05) == (low > 0 or high < 0)
    assert low < auc.difference < high


def test_unpaired_compares_the_metrics_both_have() -> None:
    current = {"accuracy": 0.999, "precision": 0.8, "recall": 0.9, "pr_auc": 0.7}

    result = unpaired(current, SEED_BASELINE)

    assert result.paired is False
    assert list(result.metrics) == ["accuracy", "precision", "recall"]
    recall = result.metrics["recall"]
    assert recall.difference == pytest.approx(0.05)
    assert recall.percent_change == pytest.approx(0.05 / 0.85 * 100)
    # No interval without the champion's scores: a higher value is not a verdict.
    assert all(c.verdict == "not tested" for c in result.metrics.values())
    assert all(c.ci_low is None and c.ci_high is None and c.p_value is None
               for c in result.metrics.values())


def test_a_zero_baseline_has_no_percent_change() -> None:
    compared = unpaired({"recall": 0.5}, {"recall": 0.0}).metrics["recall"]

    assert compared.percent_change == 0.0
    assert compared.difference == 0.5


def test_the_seed_baseline_is_the_notebooks() -> None:
    assert SEED_BASELINE == {"accuracy": 0.952, "precision": 0.89, "recall": 0.85,
                             "f1_score": 0.87, "auc_roc": 0.94}


def test_a_single_fraud_gives_values_but_no_delong_test() -> None:
    labels = np.array([0, 0, 0, 0, 1])
    candidate = np.array([0.1, 0.2, 0.3, 0.9, 0.8])
    champion = np.array([0.1, 0.2, 0.3, 0.4, 0.8])

    result = paired(labels, candidate, champion, n_boot=50)

    auc = result.metrics["auc_roc"]
    assert auc.difference == pytest.approx(-0.25)
    assert auc.p_value is None
    # Every resample would hold the same single fraud: no interval, no verdict.
    assert all(m.ci_low is None and m.verdict == "not tested" and m.detectable is None
               for m in result.metrics.values())
    assert "not tested: 1 fraud in the test set, need 30 for an interval" in result.method


@pytest.mark.parametrize(("only_candidate", "expected"), [(5, "inconclusive"), (8, "better")])
def test_a_few_frauds_caught_by_one_model_only_make_no_verdict(
    only_candidate: int, expected: str
) -> None:
    # McNemar's exact test: 5 to 0 is p = 0.0625, 8 to 0 is p = 0.008. Without the
    # one-record widening, the percentile interval of 5 to 0 already lies above 0.
    frauds, legit = 100, 20_000
    labels = np.array([1] * frauds + [0] * legit)
    rng = np.random.default_rng(0)
    champion = np.concatenate([np.where(np.arange(frauds) < 60, 0.9, 0.1),
                               rng.uniform(0, 0.4, legit)])
    candidate = champion.copy()
    candidate[60:60 + only_candidate] = 0.9

    recall = paired(labels, candidate, champion, n_boot=2_000).metrics["recall"]

    assert recall.difference == pytest.approx(only_candidate / frauds)
    assert recall.verdict == expected
    assert recall.detectable is not None and recall.se is not None
    assert recall.detectable == pytest.approx(detectable_difference(recall.se) + 1 / frauds)
