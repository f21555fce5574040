"""The live champion-vs-challenger comparison: numbers from the endpoint, verdict in words."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import numpy as np
import pytest
import xgboost
from conftest import FEATURES, small_frame, small_params
from moto import mock_aws
from scipy.stats import binomtest

from bot.adapters.aws import endpoint, runtime
from bot.core import training
from bot.core.domain import EndpointSpec, VariantSpec
from bot.core.endpoint_comparison import Invocation, summarize
from bot.errors import BotError
from bot.settings import target

T = target("fraud-detection")


def answered(*scores: float, latency: float = 10.0) -> list[Invocation]:
    return [Invocation(s, latency) for s in scores]


def test_agreement_and_disagreements_are_counted_per_record() -> None:
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0] + [0] * 992)
    results = {
        "challenger": answered(0.9, 0.1, 0.7, 0.8, 0.2, 0.1, 0.1, 0.1),
        "champion": answered(0.2, 0.1, 0.1, 0.9, 0.1, 0.6, 0.1, 0.1),
    }

    c = summarize(T.endpoint_name, results, labels, 0.5)

    assert [v.variant for v in c.variants] == ["champion", "challenger"]
    assert c.records == 8
    assert c.agreement == 5 / 8
    # Record 0: a fraud only the challenger catches; 2: a legit only the challenger flags;
    # 5: a legit only the champion flags.
    assert (c.champion_only_right, c.challenger_only_right) == (1, 2)
    assert c.mcnemar_p == pytest.approx(binomtest(1, 3, 0.5).pvalue)
    assert c.positives == 2
    assert c.records_for_enough_positives == 15_000
    champion = c.variants[0]
    assert champion.positive_rate == 2 / 8
    assert champion.score_max == 0.9
    assert champion.latency_mean_ms == 10.0
    assert "Too small to judge quality" in c.verdict
    assert "hold 2 frauds" in c.verdict
    assert "15,000 records would hold 30" in c.verdict


def test_a_sample_with_enough_frauds_names_the_better_variant() -> None:
    labels = np.array([1] * 40 + [0] * 160)
    champion = answered(*([0.9] * 20 + [0.1] * 20 + [0.1] * 160))
    challenger = answered(*([0.9] * 40 + [0.1] * 160))

    c = summarize(T.endpoint_name, {"champion": champion, "challenger": challenger},
                          labels, 0.5)

    assert (c.champion_only_right, c.challenger_only_right) == (0, 20)
    assert c.mcnemar_p is not None and c.mcnemar_p < 0.001
    assert "challenger is right more often" in c.verdict


def test_errors_and_missing_labels_are_said_plainly() -> None:
    champion = answered(0.1, 0.2)
    challenger = [Invocation(None, 5.0, "ModelError: boom"), Invocation(0.3, 5.0)]

    c = summarize(T.endpoint_name, {"champion": champion, "challenger": challenger},
                          None, 0.5)

    assert c.variants[1].errors == 1
    assert c.variants[1].first_error == "ModelError: boom"
    assert c.agreement == 1.0
    assert c.mcnemar_p is None
    assert "1 of 2 requests to challenger failed" in c.verdict
    assert "No labels" in c.verdict


def test_only_a_champion_has_nothing_to_compare() -> None:
    c = summarize(T.endpoint_name, {"champion": answered(0.1)}, np.array([0]), 0.5)

    assert c.agreement is None
    assert "nothing to compare" in c.verdict


@pytest.fixture
def aws(fake_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


def test_compare_endpoints_reports_what_each_variant_scores(aws: None) -> None:
    train, test = small_frame(400, 1), small_frame(60, 2)
    boosters = {
        "champion": training.train(
            small_params(4, 2), train, "Class"),
        "challenger": training.train(
            small_params(30, 4), train, "Class"),
    }
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=T.artifacts_bucket)
    variants = []
    for name, booster in boosters.items():
        s3.put_object(Bucket=T.artifacts_bucket, Key=f"{name}/model.tar.gz",
                      Body=training.package_model(booster))
        variants.append(VariantSpec(name, f"s3://{T.artifacts_bucket}/{name}/model.tar.gz", 50))
    endpoint.reconcile(T, EndpointSpec(T.endpoint_name, tuple(variants)), wait_delay=0)
    features, labels = test.drop(columns=["Class"]), test["Class"].to_numpy()

    c = runtime.compare_endpoints(T, features, labels, 0.5, records=40)

    sample = features.head(40)
    direct = {name: np.asarray(b.predict(xgboost.DMatrix(sample.to_numpy()),
                                         validate_features=False), dtype=np.float64)
              for name, b in boosters.items()}
    assert c.records == 40
    for stats in c.variants:
        scores = direct[stats.variant]
        assert (stats.count, stats.errors) == (40, 0)
        assert stats.score_mean == pytest.approx(scores.mean(), rel=1e-12)
        assert stats.score_p90 == pytest.approx(np.percentile(scores, 90), rel=1e-12)
        assert stats.score_max == scores.max()
        assert stats.positive_rate == (scores >= 0.5).mean()
        assert stats.latency_mean_ms is not None and stats.latency_mean_ms > 0
    decisions = {name: s >= 0.5 for name, s in direct.items()}
    assert c.agreement == (decisions["champion"] == decisions["challenger"]).mean()
    truth = labels[:40] == 1
    b = int(((decisions["champion"] == truth) & (decisions["challenger"] != truth)).sum())
    cc = int(((decisions["challenger"] == truth) & (decisions["champion"] != truth)).sum())
    assert (c.champion_only_right, c.challenger_only_right) == (b, cc)
    assert c.positives == int(truth.sum())


def test_compare_endpoints_without_an_endpoint_is_a_clear_error(aws: None) -> None:
    with pytest.raises(BotError, match="does not exist"):
        runtime.compare_endpoints(T, small_frame(3, 0)[FEATURES], None, 0.5)
