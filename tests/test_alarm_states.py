"""The alarms guarding a challenger: names and thresholds from the request, their states read
from CloudWatch (moto), and which of them fire."""

from __future__ import annotations

import boto3
import pytest
from pydantic import ValidationError

from bot.adapters.aws import alarms as cloudwatch_alarms
from bot.core.alarm_settings import Alarms
from bot.core.alarms import firing, owned, watched
from bot.core.request import Request
from bot.settings import Target


def _request(base: dict, **challenger: object) -> Request:
    data = {**base, "rollout": {"challenger": {"traffic_percent": 10, **challenger}}}
    return Request.model_validate(data)


@pytest.fixture
def base_request() -> dict:
    return {
        "experiment_id": "exp-1", "description": "d", "algorithm": "xgboost",
        "hyperparameters": {"objective": "binary:logistic", "num_round": 10, "max_depth": 3,
                            "eta": 0.1, "subsample": 0.8, "colsample_bytree": 0.8},
        "data": {"train": "s3://b/train.parquet", "test": "s3://b/test.parquet"},
        "gates": {"minimum": {"accuracy": 0.9}},
    }


def test_the_bots_alarms_take_the_requests_thresholds_in_cloudwatchs_units(aws: Target) -> None:
    error_rate, latency = owned(aws, Alarms(error_rate=0.02, latency_ms=250, period_minutes=3))
    assert error_rate.name == f"{aws.name}-challenger-error-rate"
    assert (error_rate.threshold, error_rate.period_seconds) == (0.02, 180)
    assert latency.name == f"{aws.name}-challenger-latency"
    assert latency.threshold == 250_000  # ModelLatency is in microseconds


def test_watched_alarms_are_the_bots_then_the_requests_and_none_without_a_challenger(
    aws: Target, base_request: dict
) -> None:
    request = _request(base_request, alarms={"names": ["team-chargebacks"]})
    assert watched(aws, request) == (f"{aws.name}-challenger-error-rate",
                                     f"{aws.name}-challenger-latency", "team-chargebacks")
    assert watched(aws, _request(base_request, traffic_percent=100)) == ()
    assert watched(aws, Request.model_validate(base_request)) == ()
    assert watched(aws, None) == ()


def test_states_are_read_from_cloudwatch_and_only_alarm_fires(aws: Target) -> None:
    specs = owned(aws, Alarms())
    for spec in specs:
        cloudwatch_alarms.put(aws, spec)
    boto3.client("cloudwatch", region_name=aws.region).set_alarm_state(
        AlarmName=specs[1].name, StateValue="ALARM", StateReason="p99 above 500 ms")
    states = cloudwatch_alarms.states([s.name for s in specs] + ["not-there"], aws.region)
    assert set(states) == {s.name for s in specs}
    assert [(s.name, s.reason) for s in firing(states)] == [(specs[1].name, "p99 above 500 ms")]
    assert set(cloudwatch_alarms.read_owned(aws, f"{aws.name}-challenger-")) == {
        s.name for s in specs}
    cloudwatch_alarms.delete(aws, [s.name for s in specs])
    assert cloudwatch_alarms.states([s.name for s in specs], aws.region) == {}


@pytest.mark.parametrize("field, value", [
    ("error_rate", 0), ("error_rate", 1.5), ("latency_ms", -1), ("latency_ms", 120_000),
    ("period_minutes", 0), ("evaluation_periods", 0), ("baking_minutes", 61),
    ("names", ["a", "a"]), ("names", [""]), ("names", ["x" * 256]),
])
def test_bad_alarm_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        Alarms.model_validate({field: value})
    assert raised.value.errors()[0]["loc"][0] == field
