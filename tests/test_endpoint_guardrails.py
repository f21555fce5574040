"""SageMaker rolls a bad update back itself: UpdateEndpoint carries a DeploymentConfig naming
the alarms, and the local stand-in honours it during the update's baking period."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.adapters.aws import endpoint
from bot.adapters.aws.endpoint_guardrails import Guardrails, RolledBack, deployment_config
from bot.core import alarms
from bot.core.domain import EndpointSpec, VariantSpec
from bot.errors import BotError
from bot.settings import target

T = target("fraud-detection")
OLD = "s3://fraud-detection-models/promotion-bot/models/aaa/model.tar.gz"
NEW = "s3://fraud-detection-models/promotion-bot/models/bbb/model.tar.gz"
ERRORS, LATENCY = alarms.error_rate_name(T), alarms.latency_name(T)
GUARDED = Guardrails(alarms=(ERRORS, LATENCY), baking_seconds=900)


def spec(*variants: tuple[str, str, int]) -> EndpointSpec:
    return EndpointSpec(T.endpoint_name, tuple(VariantSpec(n, u, w) for n, u, w in variants))


@pytest.fixture
def aws(fake_credentials: None) -> Iterator[Any]:
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for name, metric in ((ERRORS, "Invocation5XXErrors"), (LATENCY, "ModelLatency")):
            cloudwatch.put_metric_alarm(
                AlarmName=name, Namespace="AWS/SageMaker", MetricName=metric,
                Dimensions=[{"Name": "EndpointName", "Value": T.endpoint_name},
                            {"Name": "VariantName", "Value": "challenger"}],
                Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=1.0,
                ComparisonOperator="GreaterThanThreshold")
        yield boto3.client("sagemaker", region_name="us-east-1")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, aws: Any) -> list[tuple[str, dict[str, Any]]]:
    """The SageMaker calls reconcile makes, with their parameters."""
    made: list[tuple[str, dict[str, Any]]] = []

    def recording_client(service: str, region: str | None = None) -> Any:
        sm = boto3.client(service, region_name=region or "us-east-1")
        sm.meta.events.register("provide-client-params.sagemaker.*",
                                lambda params, model, **_: made.append((model.name, params)))
        return sm

    monkeypatch.setattr(endpoint, "client", recording_client)
    return made


def fire_after_update(monkeypatch: pytest.MonkeyPatch, alarm: str) -> None:
    """``alarm`` goes into ALARM once UpdateEndpoint was sent: during the update's baking."""

    def firing_client(service: str, region: str | None = None) -> Any:
        sm = boto3.client(service, region_name=region or "us-east-1")

        def fire(**_: Any) -> None:
            boto3.client("cloudwatch", region_name="us-east-1").set_alarm_state(
                AlarmName=alarm, StateValue="ALARM", StateReason="5XX errors above 1 %")

        sm.meta.events.register("after-call.sagemaker.UpdateEndpoint", fire)
        return sm

    monkeypatch.setattr(endpoint, "client", firing_client)


def reconcile(wanted: EndpointSpec, guardrails: Guardrails | None = GUARDED
              ) -> endpoint.EndpointOutcome:
    return endpoint.reconcile(T, wanted, wait_delay=0, guardrails=guardrails)


def test_an_update_carries_the_alarms_and_describe_endpoint_names_them(
        aws: Any, sent: list[tuple[str, dict[str, Any]]]) -> None:
    reconcile(spec(("champion", OLD, 100)))
    wanted = spec(("champion", OLD, 90), ("challenger", NEW, 10))

    outcome = reconcile(wanted)

    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 900},
            "TerminationWaitInSeconds": 0, "MaximumExecutionTimeoutInSeconds": 2700},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ERRORS},
                                                 {"AlarmName": LATENCY}]}}
    updates = [params for name, params in sent if name == "UpdateEndpoint"]
    assert [u.get("DeploymentConfig") for u in updates] == [deployment]
    assert endpoint.read(T) == wanted
    described = aws.describe_endpoint(EndpointName=T.endpoint_name)
    assert described["LastDeploymentConfig"] == deployment
    assert "FailureReason" not in described
    assert any(f"rolled back by SageMaker if alarm {ERRORS}, {LATENCY} fires in 15 min" in a
               for a in outcome.actions)


def test_an_alarm_during_baking_rolls_the_update_back(
        aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    reconcile(spec(("champion", OLD, 100)))
    before = endpoint.read(T)
    old = aws.describe_endpoint(EndpointName=T.endpoint_name)["EndpointConfigName"]
    fire_after_update(monkeypatch, ERRORS)

    with pytest.raises(RolledBack) as caught:
        reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))

    assert caught.value.alarms == (ERRORS,)
    assert caught.value.served == before
    assert caught.value.message == (
        f"AWS rolled endpoint {T.endpoint_name} back because alarm {ERRORS} fired during the "
        f"baking period; production serves the previous models (champion 100%, endpoint "
        f"config {old}); fix the cause, then rerun apply to try again")
    assert endpoint.read(T) == before
    described = aws.describe_endpoint(EndpointName=T.endpoint_name)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", old)
    assert ERRORS in described["FailureReason"] and LATENCY not in described["FailureReason"]
    assert described["LastDeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": ERRORS}, {"AlarmName": LATENCY}]


def test_the_states_of_an_update_an_alarm_rolls_back(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    wanted = spec(("champion", OLD, 90), ("challenger", NEW, 10))
    endpoint._ensure_model(aws, T, NEW)
    endpoint._ensure_config(aws, T, wanted, endpoint.config_name(T, wanted))
    aws.update_endpoint(EndpointName=T.endpoint_name,
                        EndpointConfigName=endpoint.config_name(T, wanted),
                        DeploymentConfig=deployment_config(GUARDED))
    seen = [aws.describe_endpoint(EndpointName=T.endpoint_name)["EndpointStatus"]
            for _ in range(3)]  # provisioning, then baking with the alarms OK
    boto3.client("cloudwatch", region_name="us-east-1").set_alarm_state(
        AlarmName=LATENCY, StateValue="ALARM", StateReason="p99 above 300 ms")
    seen += [aws.describe_endpoint(EndpointName=T.endpoint_name)["EndpointStatus"]
             for _ in range(2)]

    assert seen == ["Updating", "Updating", "Updating", "RollingBack", "InService"]
    assert endpoint.read(T) == spec(("champion", OLD, 100))


def test_an_update_whose_alarms_stay_ok_completes_after_baking(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    boto3.client("cloudwatch", region_name="us-east-1").set_alarm_state(
        AlarmName=LATENCY, StateValue="INSUFFICIENT_DATA", StateReason="no traffic yet")
    wanted = spec(("champion", OLD, 90), ("challenger", NEW, 10))

    reconcile(wanted)

    assert endpoint.read(T) == wanted


def test_without_alarms_an_update_has_no_deployment_config(
        aws: Any, sent: list[tuple[str, dict[str, Any]]]) -> None:
    reconcile(spec(("champion", OLD, 100)), guardrails=None)
    boto3.client("cloudwatch", region_name="us-east-1").set_alarm_state(
        AlarmName=ERRORS, StateValue="ALARM", StateReason="not watched by this update")
    wanted = spec(("champion", OLD, 90), ("challenger", NEW, 10))

    reconcile(wanted, guardrails=Guardrails())

    assert [("DeploymentConfig" in p) for n, p in sent if n == "UpdateEndpoint"] == [False]
    assert "LastDeploymentConfig" not in aws.describe_endpoint(EndpointName=T.endpoint_name)
    assert endpoint.read(T) == wanted


def test_a_weight_change_takes_no_deployment_config(
        aws: Any, sent: list[tuple[str, dict[str, Any]]]) -> None:
    reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))
    sent.clear()

    reconcile(spec(("champion", OLD, 50), ("challenger", NEW, 50)))

    assert [n for n, _ in sent if n.startswith("Update")] == [
        "UpdateEndpointWeightsAndCapacities"]
    assert all("DeploymentConfig" not in p for _, p in sent)


def test_a_baking_period_beyond_sagemakers_limit_is_refused() -> None:
    with pytest.raises(BotError, match="the baking period must be 0 to 60 minutes"):
        deployment_config(Guardrails(alarms=(ERRORS,), baking_seconds=3601))
    assert deployment_config(Guardrails(baking_seconds=600)) is None


def test_the_embedded_default_rolls_an_update_back_too(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through moto's server (``local-aws``): the alarm is read from the server's CloudWatch."""
    from bot.local import aws_server

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with aws_server.LocalAWS():
        boto3.client("cloudwatch").put_metric_alarm(
            AlarmName=ERRORS, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold")
        reconcile(spec(("champion", OLD, 100)))
        fire_after_update(monkeypatch, ERRORS)

        with pytest.raises(RolledBack, match=f"because alarm {ERRORS} fired"):
            reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))

        described = boto3.client("sagemaker").describe_endpoint(EndpointName=T.endpoint_name)
        assert described["LastDeploymentConfig"] == deployment_config(GUARDED)
        assert ERRORS in described["FailureReason"]
        assert endpoint.read(T) == spec(("champion", OLD, 100))
