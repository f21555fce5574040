"""The live champion-vs-challenger comparison: labelled records in CSV batches, paired
recall and precision with intervals, McNemar, latency; the verdict in words."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost
from conftest import FEATURES, compare_sampled, small_frame, small_params
from moto import mock_aws
from scipy.stats import binomtest

from bot.adapters.aws import endpoint, runtime
from bot.core import training
from bot.core.domain import EndpointSpec, VariantSpec
from bot.core.endpoint_comparison import summarize
from bot.core.endpoint_values import Invocation
from bot.errors import BotError
from bot.settings import target

T = target("fraud-detection")


def answered(*scores: float, latency: float = 10.0, per_request: int = 0) -> list[Invocation]:
    """The answers to ``scores``, in requests of ``per_request`` records (0: one request)."""
    size = per_request or len(scores)
    return [Invocation(tuple(scores[i:i + size]), len(scores[i:i + size]), latency)
            for i in range(0, len(scores), size)]


def test_recall_precision_and_disagreements_are_counted_per_record() -> None:
    # Frauds first: 0 caught by the challenger only, 1 by both, 2 by neither, 3 by the
    # champion only; then legit: 4 flagged by the challenger only, 5 by the champion only.
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    results = {
        "challenger": answered(0.9, 0.8, 0.1, 0.2, 0.7, 0.1, 0.1, 0.1, per_request=3),
        "champion": answered(0.2, 0.9, 0.1, 0.9, 0.1, 0.6, 0.1, 0.1, per_request=3),
    }

    c = summarize(T.endpoint_name, results, labels, 0.5, legit_weight=10.0)

    assert [v.variant for v in c.variants] == ["champion", "challenger"]
    assert c.records == 8 and c.frauds == 4 and c.legit_weight == 10.0
    champion, challenger = c.variants
    assert champion.requests == 3 and champion.records == 8
    assert champion.recall == challenger.recall == 0.5
    # Precision weighs each sampled legit record by the 10 it stands for: 2 / (2 + 10).
    assert champion.precision == pytest.approx(2 / 12)
    assert champion.flagged_rate == pytest.approx((2 + 10) / (4 + 40))
    # Agreement is weighted too: records 0, 3 (frauds) and 4, 5 (legit) disagree.
    assert c.agreement == pytest.approx((2 + 20) / (4 + 40))
    assert (c.frauds_only_champion, c.frauds_only_challenger) == (1, 1)
    assert c.mcnemar_p == pytest.approx(binomtest(1, 2, 0.5).pvalue)
    recall, precision = c.differences
    assert recall.metric == "recall" and recall.difference == 0.0
    assert recall.verdict == "inconclusive" and recall.ci_low <= 0 <= recall.ci_high
    assert precision.difference == pytest.approx(0.0)
    assert "this sample detects recall differences of" in c.verdict


def test_a_challenger_that_catches_more_frauds_is_called_better() -> None:
    labels = np.array([1] * 100 + [0] * 1000)
    champion = [0.9] * 60 + [0.1] * 40 + [0.1] * 1000
    challenger = [0.9] * 85 + [0.1] * 15 + [0.1] * 1000

    c = summarize(T.endpoint_name, {"champion": answered(*champion),
                                    "challenger": answered(*challenger)}, labels, 0.5, 50.0)

    recall = c.differences[0]
    assert recall.difference == pytest.approx(0.25)
    assert recall.ci_low > 0 and recall.verdict == "better"
    assert (c.frauds_only_champion, c.frauds_only_challenger) == (0, 25)
    assert c.mcnemar_p is not None and c.mcnemar_p < 1e-6
    assert "challenger ▲ better" in c.verdict
    # One fraud moves recall by 0.01; 25 one-sided disagreements spread it more.
    assert 0.01 < recall.detectable < 0.2


def test_identical_variants_still_state_what_the_sample_can_detect() -> None:
    labels = np.array([1] * 50 + [0] * 500)
    scores = [0.9] * 40 + [0.1] * 510

    c = summarize(T.endpoint_name, {"champion": answered(*scores),
                                    "challenger": answered(*scores)}, labels, 0.5, 100.0)

    assert c.differences[0].verdict == "inconclusive"
    assert c.differences[0].detectable == pytest.approx(2.8016 / 50, abs=1e-4)
    assert "Both catch exactly the same of the 50 frauds" in c.verdict
    assert "detects recall differences of 0.056" in c.verdict


def test_errors_and_missing_labels_are_said_plainly() -> None:
    champion = answered(0.1, 0.2)
    challenger = [Invocation(None, 1, 5.0, "ModelError: boom"), Invocation((0.3,), 1, 5.0)]

    c = summarize(T.endpoint_name, {"champion": champion, "challenger": challenger},
                  None, 0.5)

    assert c.variants[1].errors == 1
    assert c.variants[1].first_error == "ModelError: boom"
    assert c.agreement == 1.0
    assert c.mcnemar_p is None and c.differences == ()
    assert "1 of 2 records sent to challenger got no answer" in c.verdict
    assert "No labels" in c.verdict


def test_only_a_champion_has_nothing_to_compare() -> None:
    c = summarize(T.endpoint_name, {"champion": answered(0.1)}, np.array([0]), 0.5)

    assert c.agreement is None
    assert "nothing to compare" in c.verdict


def test_the_sample_holds_every_fraud_and_weighs_the_legit_records() -> None:
    labels = np.array([0] * 990 + [1] * 10)

    rows, weight = runtime.sample(labels, 99, seed=3, size=labels.size)

    assert np.all(np.diff(rows) > 0)  # the data's order
    assert set(np.flatnonzero(labels)) <= set(rows.tolist())
    assert rows.size == 109 and weight == pytest.approx(990 / 99)
    everything, one = runtime.sample(labels, 5_000, seed=3, size=labels.size)
    assert everything.size == 1_000 and one == 1.0


def test_batches_stay_under_the_record_and_byte_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = small_frame(250, 0)[FEATURES]
    monkeypatch.setattr(runtime, "MAX_BATCH_RECORDS", 100)

    by_records = runtime.batches(frame)

    assert [n for _, n in by_records] == [100, 100, 50]
    monkeypatch.setattr(runtime, "MAX_BATCH_BYTES", 3 * len(by_records[0][0]) // 100 + 1)
    by_bytes = runtime.batches(frame)
    assert all(len(body) <= runtime.MAX_BATCH_BYTES for body, _ in by_bytes)
    assert sum(n for _, n in by_bytes) == 250 and len(by_bytes) > 3
    rows = b"\n".join(body for body, _ in by_bytes).decode().splitlines()
    assert [float(v) for v in rows[7].split(",")] == frame.iloc[7].tolist()


@pytest.fixture
def aws(fake_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


def serve(boosters: dict[str, xgboost.Booster]) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=T.artifacts_bucket)
    variants = []
    for name, booster in boosters.items():
        s3.put_object(Bucket=T.artifacts_bucket, Key=f"{name}/model.tar.gz",
                      Body=training.package_model(booster))
        variants.append(VariantSpec(name, f"s3://{T.artifacts_bucket}/{name}/model.tar.gz", 50))
    endpoint.reconcile(T, EndpointSpec(T.endpoint_name, tuple(variants)), wait_delay=0)


def test_compare_endpoints_sends_every_fraud_in_batches_and_scores_like_the_models(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, test = small_frame(400, 1), small_frame(300, 2)
    boosters = {"champion": training.train(small_params(4, 2), train, "Class"),
                "challenger": training.train(small_params(30, 4), train, "Class")}
    serve(boosters)
    monkeypatch.setattr(runtime, "MAX_BATCH_RECORDS", 40)
    features, labels = test.drop(columns=["Class"]), test["Class"].to_numpy()

    c = compare_sampled(T, features, labels, 0.5, legit_records=100, seed=1)

    rows, weight = runtime.sample(labels, 100, seed=1, size=labels.size)
    sent = features.iloc[rows]
    assert c.records == rows.size == int(labels.sum()) + 100
    assert c.frauds == int(labels.sum()) and c.legit_weight == pytest.approx(weight)
    truth = labels[rows] == 1
    for stats in c.variants:
        direct = np.asarray(boosters[stats.variant].predict(
            xgboost.DMatrix(sent.to_numpy()), validate_features=False), dtype=np.float64)
        flagged = direct >= 0.5
        assert (stats.records, stats.errors) == (rows.size, 0)
        assert stats.requests == -(-rows.size // 40)  # multi-record requests
        assert stats.recall == pytest.approx((flagged & truth).sum() / truth.sum())
        tp, fp = (flagged & truth).sum(), (flagged & ~truth).sum()
        assert stats.precision == pytest.approx(tp / (tp + weight * fp) if tp + fp else 0.0)
        assert stats.latency_mean_ms is not None and stats.latency_mean_ms > 0
    assert {d.metric for d in c.differences} == {"recall", "precision"}


def test_each_variant_gets_the_columns_its_model_was_trained_with(aws: None) -> None:
    train, test = small_frame(400, 1), small_frame(200, 2)
    wider = train.assign(Extra=train["V1"] * train["V2"])
    boosters = {"champion": training.train(small_params(10, 3), train, "Class"),
                "challenger": training.train(small_params(10, 3), wider, "Class")}
    serve(boosters)
    test = test.assign(Extra=test["V1"] * test["V2"])

    c = compare_sampled(T, test.drop(columns=["Class"]), test["Class"].to_numpy(),
                                  0.5, legit_records=50)

    assert [v.errors for v in c.variants] == [0, 0]
    narrow = compare_sampled(T, test.drop(columns=["Class", "Extra"]),
                                       test["Class"].to_numpy(), 0.5, legit_records=50)
    challenger = narrow.variants[1]
    assert challenger.errors == challenger.records
    assert "lacks the model's columns Extra" in (challenger.first_error or "")


def test_compare_endpoints_without_an_endpoint_is_a_clear_error(aws: None) -> None:
    with pytest.raises(BotError, match="does not exist"):
        compare_sampled(T, pd.DataFrame(small_frame(3, 0)[FEATURES]), None, 0.5)
