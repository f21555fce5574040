"""An endpoint update AWS rolls back (an alarm fired during its baking period): apply says so
in one line, records it, and leaves production consistent: the previous models serve and the
production config says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from conftest import GitRepo, request_yaml

from bot import cli
from bot.adapters.aws import artifacts, config_store, endpoint
from bot.adapters.request_files import parse_request_text
from bot.core import alarms
from bot.core.domain import Approval, Plan
from bot.flows import resources
from bot.flows.apply import apply
from bot.flows.resources.base import Context
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"
CHALLENGER = request_yaml("exp-xgboost-1", rollout=(
    "rollout:\n  challenger:\n    traffic_percent: 1\n    alarms:\n      baking_minutes: 5\n"
    "      names: [fraud-detection-business-fraud-rate]\n"))

pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


def alarm(t: Target, name: str) -> None:
    boto3.client("cloudwatch", region_name=t.region).put_metric_alarm(
        AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": t.endpoint_name},
                    {"Name": "VariantName", "Value": "challenger"}],
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold")


def fire_during_baking(monkeypatch: pytest.MonkeyPatch, t: Target, name: str) -> list[str]:
    """``name`` goes into ALARM right after the next UpdateEndpoint (once)."""
    fired: list[str] = []
    making = endpoint.client

    def firing_client(service: str, region: str | None = None) -> Any:
        sm = making(service, region)

        def fire(**_: Any) -> None:
            if not fired:
                fired.append(name)
                boto3.client("cloudwatch", region_name=t.region).set_alarm_state(
                    AlarmName=name, StateValue="ALARM", StateReason="5XX errors above 1 %")

        sm.meta.events.register_first("after-call.sagemaker.UpdateEndpoint", fire,
                                      unique_id="test-fire-during-baking")
        return sm

    monkeypatch.setattr(endpoint, "client", firing_client)
    return fired


def test_an_update_rolled_back_by_an_alarm_is_reported_recorded_and_undone(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        champion_serving: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    served = endpoint.read(aws)
    before = config_store.read(aws)
    assert served is not None and before is not None
    errors = alarms.error_rate_name(aws)
    for name in (errors, alarms.latency_name(aws)):
        alarm(aws, name)
    fired = fire_during_baking(monkeypatch, aws, errors)
    plan = store_plan(CHALLENGER)
    git_repo.commit({PATH: CHALLENGER}, "Challenger at 1 %")
    commit = git_repo.head()
    old_config = boto3.client("sagemaker", region_name=aws.region).describe_endpoint(
        EndpointName=aws.endpoint_name)["EndpointConfigName"]
    capsys.readouterr()

    assert cli.main(["apply", "--repo", str(git_repo.path), "--before",
                     champion_serving]) == 3

    assert fired == [errors]
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (f"AWS rolled endpoint {aws.endpoint_name} back because alarm {errors} fired during "
            "the baking period; production serves the previous models (champion 100%, "
            f"endpoint config {old_config}); the production config is back to what serves "
            f"(commit {champion_serving[:12]}); fix the cause, then rerun apply to try again"
            ) in err
    # Production is what it was: the champion alone, and a config that says so.
    assert endpoint.read(aws) == served
    after = config_store.read(aws)
    assert after is not None and after.commit == before.commit == champion_serving
    assert after.challenger_traffic_percent is None
    described = boto3.client("sagemaker", region_name=aws.region).describe_endpoint(
        EndpointName=aws.endpoint_name)
    assert errors in described["FailureReason"]
    assert [a["AlarmName"] for a in described["LastDeploymentConfig"][
        "AutoRollbackConfiguration"]["Alarms"]] == [
        errors, alarms.latency_name(aws), "fraud-detection-business-fraud-rate"]
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
    # The apply record says what happened.
    record = artifacts.get_apply_record(aws, commit)
    assert record is not None and record.status == "failed"
    assert record.error is not None and f"because alarm {errors} fired" in record.error
    step = record.step("endpoint")
    assert step is not None
    assert step.details["rolled_back"]["alarms"] == [errors]
    assert [(v["name"], v["weight"]) for v in step.details["variants"]] == [("champion", 100)]
    assert step.details["config_restored_commit"] == champion_serving

    # History says it, and what merging still changes (what the next plan shows) is the
    # challenger: production does not serve it.
    capsys.readouterr()
    assert cli.main(["history", "fraud-detection", "--repo", str(git_repo.path)]) == 0
    assert f"because alarm {errors} fired during the baking period" in capsys.readouterr().out
    context = Context(aws, parse_request_text(CHALLENGER, PATH)[0], plan, commit,
                      approval=Approval(("alice",), "commit-author"))
    live = resources.read_live(context)
    still = resources.changes(context, resources.desired_state(context, live), live)
    assert {c.target for c in still} >= {"s3-config", "endpoint"}

    # Once the alarm is OK again, a rerun of the same apply finishes it.
    boto3.client("cloudwatch", region_name=aws.region).set_alarm_state(
        AlarmName=errors, StateValue="OK", StateReason="errors back to normal")
    [outcome] = apply(git_repo.path, champion_serving, "HEAD", None)
    assert [(v.name, v.weight) for v in outcome.variants] == [("champion", 99),
                                                             ("challenger", 1)]
    config = config_store.read(aws)
    assert config is not None and config.commit == commit
    assert config.challenger_traffic_percent == 1
    record = artifacts.get_apply_record(aws, commit)
    assert record is not None and record.status == "complete"
    step = record.step("endpoint")
    assert step is not None and step.details["rolled_back"] is None
