"""Fault plans: the local stand-ins fail like the real services, on demand and reproducibly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from bot import cli
from bot.adapters.aws import alarms as cloudwatch
from bot.adapters.aws import artifacts, ssm
from bot.adapters.aws.images import xgboost_image
from bot.core.apply_record import ApplyRecord
from bot.core.domain import Approval
from bot.errors import InvalidRequest
from bot.local import faults
from bot.local.aws_server import LocalAWS
from bot.local.faults import FaultPlan, Injector, Rule
from bot.settings import Target, target

T = target("fraud-detection")
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def moto(fake_credentials: None) -> Iterator[Target]:
    with mock_aws():
        boto3.client("s3", region_name=T.region).create_bucket(Bucket=T.artifacts_bucket)
        yield T


def test_a_plan_file_with_mistakes_is_refused_one_line_per_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text("seed: 3\nrules:\n  - service: ssm\n    kind: explode\n"
                    "  - probability: 2\n    colour: red\n")

    with pytest.raises(InvalidRequest) as caught:
        FaultPlan.load(path)
    lines = [str(p) for p in caught.value.problems]
    assert any(line.startswith(f"{path}:4: rules.0.kind: must be one of") for line in lines)
    assert f"{path}:5: rules.1.probability: must be <= 1 (got 2)" in lines
    assert any(line.startswith(f"{path}:6: rules.1.colour: unknown field") for line in lines)

    # local-aws refuses it before it starts serving anything.
    assert cli.main(["local-aws", "--port", "0", "--faults", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: rules.0.kind" in err and "Traceback" not in err


def test_the_same_seed_fails_the_same_calls() -> None:
    plan = FaultPlan(seed=7, rules=(Rule(service="ssm", kind="throttle", probability=0.3),
                                    Rule(service="s3", operation="GetObject", kind="throttle",
                                         skip=2, times=3)))

    def run(p: FaultPlan) -> list[bool]:
        injector = Injector(p)
        return [injector.pick(service, op, faults.AWS_KINDS) is not None
                for _ in range(40) for service, op in (("ssm", "GetParameter"),
                                                       ("s3", "GetObject"))]

    first, again = run(plan), run(plan)
    other = run(plan.model_copy(update={"seed": 8}))
    assert first == again and first != other
    s3_calls = first[1::2]
    assert s3_calls[:2] == [False, False] and sum(s3_calls) == 3 and all(s3_calls[2:5])
    assert 0 < sum(first[::2]) < 40


def test_aws_throttles_are_what_botocore_sees_and_the_bots_clients_wait_them_out(
        moto: Target) -> None:
    plan = FaultPlan(rules=(Rule(service="ssm", operation="GetParametersByPath",
                                 kind="throttle", times=3),))
    with faults.injected(plan) as injector:
        plain = boto3.client("ssm", region_name=T.region)  # botocore's default: 3 attempts
        with pytest.raises(ClientError, match=r"ThrottlingException.*reached max retries: 2"):
            plain.get_parameters_by_path(Path=T.ssm_prefix)
        assert len(injector.injected()) == 3

    with faults.injected(plan) as injector:
        assert ssm.read(T) == {}  # the bot's clients: adaptive mode, 8 attempts
        assert [(i.service, i.operation, i.kind) for i in injector.injected()] == [
            ("ssm", "GetParametersByPath", "throttle")] * 3


def test_cloudwatch_fails_in_its_own_protocol_and_the_alarm_reads_wait_it_out(
        moto: Target) -> None:
    """CloudWatch speaks JSON 1.0: botocore reads the injected code, and the bot's reads of
    the challenger's alarms outlast throttles and server errors."""
    name = f"{T.name}-challenger-error-rate"
    plan = FaultPlan(rules=(
        Rule(service="cloudwatch", operation="DescribeAlarms", kind="throttle", times=2),
        Rule(service="cloudwatch", operation="DescribeAlarms", kind="server-error", times=1)))
    raw = boto3.client("cloudwatch", region_name=T.region, config=NO_RETRIES)
    raw.put_metric_alarm(AlarmName=name, Namespace="AWS/SageMaker",
                         MetricName="Invocation5XXErrors", Statistic="Sum", Period=300,
                         EvaluationPeriods=1, Threshold=1.0,
                         ComparisonOperator="GreaterThanThreshold")
    with faults.injected(plan), pytest.raises(ClientError) as throttled:
        raw.describe_alarms(AlarmNames=[name])
    assert (throttled.value.response["Error"]["Code"],
            throttled.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ThrottlingException", 400)

    with faults.injected(plan) as injector:
        read = cloudwatch.states([name], T.region)[name]
        assert [(i.operation, i.kind) for i in injector.injected()] == [
            ("DescribeAlarms", "throttle"), ("DescribeAlarms", "throttle"),
            ("DescribeAlarms", "server-error")]
    assert read.state == raw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def test_s3_answers_slow_down_and_internal_errors_as_s3_does(moto: Target) -> None:
    def plan(times: int) -> FaultPlan:
        return FaultPlan(rules=(
            Rule(service="s3", operation="PutObject", kind="throttle", times=times),
            Rule(service="s3", operation="GetObject", kind="server-error", times=times)))

    raw = boto3.client("s3", region_name=T.region, config=NO_RETRIES)
    with faults.injected(plan(1)):
        with pytest.raises(ClientError) as slow:
            raw.put_object(Bucket=T.artifacts_bucket, Key="k", Body=b"x")
        raw.put_object(Bucket=T.artifacts_bucket, Key="k", Body=b"x")
        with pytest.raises(ClientError) as failed:
            raw.get_object(Bucket=T.artifacts_bucket, Key="k")
    assert (slow.value.response["Error"]["Code"],
            slow.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("SlowDown", 503)
    assert (failed.value.response["Error"]["Code"],
            failed.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("InternalError", 500)

    with faults.injected(plan(1)) as injector:  # the bot's own calls go through
        record = ApplyRecord(target=T.name, path="p.yaml", commit="c0ffee", status="complete",
                             started_at="2026-01-01T00:00:00+00:00",
                             updated_at="2026-01-01T00:00:00+00:00", tag="t",
                             approval=Approval(("dana",), "commit-author"))
        artifacts.put_apply_record(T, "c0ffee", record)
        assert artifacts.get_apply_record(T, "c0ffee") == record
    assert len(injector.injected()) == 2


def test_a_lost_answer_still_happened(moto: Target) -> None:
    plan = FaultPlan(rules=(Rule(service="ssm", operation="PutParameter", kind="server-error",
                                 after=True, times=1),))
    raw = boto3.client("ssm", region_name=T.region, config=NO_RETRIES)
    with faults.injected(plan), pytest.raises(ClientError, match="InternalFailure"):
        raw.put_parameter(Name="/x/y", Value="1", Type="String")
    assert raw.get_parameter(Name="/x/y")["Parameter"]["Value"] == "1"


def _model(sm: Any, name: str) -> str:
    return str(sm.create_model(ModelName=name, ExecutionRoleArn=T.sagemaker_role_arn,
                               PrimaryContainer={"Image": xgboost_image(T),
                                                 "ModelDataUrl": "s3://b/k"})["ModelArn"])


def test_list_tags_of_a_deleted_resource_is_a_validation_error(moto: Target) -> None:
    sm = boto3.client("sagemaker", region_name=T.region, config=NO_RETRIES)
    arn = _model(sm, "gone")
    sm.delete_model(ModelName="gone")

    with pytest.raises(ClientError) as caught:
        sm.list_tags(ResourceArn=arn)

    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_server_answers_by_the_plan_and_prints_no_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    path = tmp_path / "faults.yaml"
    path.write_text("seed: 1\nrules:\n  - service: sagemaker\n    operation: DescribeModel\n"
                    "    kind: throttle\n    times: 1\n")
    with LocalAWS() as aws:
        injector = aws.inject(FaultPlan.load(path))
        sm = boto3.client("sagemaker", config=NO_RETRIES)
        arn = _model(sm, "m")
        with pytest.raises(ClientError, match="ThrottlingException"):
            sm.describe_model(ModelName="m")
        assert sm.describe_model(ModelName="m")["ModelArn"] == arn
        sm.delete_model(ModelName="m")
        with pytest.raises(ClientError, match="ValidationException"):
            sm.list_tags(ResourceArn=arn)
    assert injector is not None and len(injector.injected()) == 1
    assert "Traceback" not in capfd.readouterr().err
