"""The embedded default: moto with UpdateEndpoint and a real model runtime, server, bootstrap."""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost
import yaml
from botocore.exceptions import ClientError
from conftest import FEATURES, small_frame, small_params
from moto import mock_aws

from bot.adapters.aws import endpoint
from bot.adapters.aws.images import xgboost_image
from bot.core import training
from bot.core.domain import EndpointSpec, VariantSpec
from bot.core.production_config import ProductionConfig
from bot.errors import BotError
from bot.local import aws_server, bootstrap, faults, moto_gaps
from bot.local.faults import FaultPlan, Rule
from bot.settings import target

T = target("fraud-detection")


def csv(features: pd.DataFrame) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row)
                     for row in features.itertuples(index=False, name=None))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    moto_gaps.install_moto_extensions()
    with mock_aws():
        yield


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """Two small, different real models as model.tar.gz."""
    train = small_frame(400, 1)
    return {
        "old": training.package_model(training.train(
            small_params(5, 2), train, "Class")),
        "new": training.package_model(training.train(
            small_params(20, 4), train, "Class")),
    }


@pytest.fixture
def served(aws: None, models: dict[str, bytes]) -> dict[str, str]:
    """The endpoint serving the old model as champion and the new one as challenger."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=T.artifacts_bucket)
    urls = {}
    for name, data in models.items():
        s3.put_object(Bucket=T.artifacts_bucket, Key=f"models/{name}/model.tar.gz", Body=data)
        urls[name] = f"s3://{T.artifacts_bucket}/models/{name}/model.tar.gz"
    endpoint.reconcile(T, EndpointSpec(T.endpoint_name, (
        VariantSpec("champion", urls["old"], 100), VariantSpec("challenger", urls["new"], 0))),
        wait_delay=0)
    return urls


def invoke(body: str, **extra: Any) -> tuple[str, np.ndarray]:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    response = runtime.invoke_endpoint(EndpointName=T.endpoint_name, ContentType="text/csv",
                                       Body=body.encode(), **extra)
    assert response["ContentType"] == "text/csv"
    text = response["Body"].read().decode()
    return response["InvokedProductionVariant"], np.array(text.split("\n"), dtype=np.float64)


def direct(model: bytes, features: pd.DataFrame) -> np.ndarray:
    booster = training.load_model(model)
    return np.asarray(booster.predict(xgboost.DMatrix(features.to_numpy()),
                                      validate_features=False), dtype=np.float64)


def test_invoke_endpoint_answers_with_the_target_variants_model(
    served: dict[str, str], models: dict[str, bytes]
) -> None:
    features = small_frame(25, 7)[FEATURES]

    for variant, model in (("champion", "old"), ("challenger", "new")):
        invoked, scores = invoke(csv(features), TargetVariant=variant)

        assert invoked == variant
        np.testing.assert_array_equal(scores, direct(models[model], features))
        booster = training.load_model(models[model])
        np.testing.assert_allclose(scores, training.score(booster, features), rtol=1e-6)
    assert not np.array_equal(direct(models["old"], features), direct(models["new"], features))


def test_invoke_without_a_target_variant_follows_the_weights(served: dict[str, str]) -> None:
    line = csv(small_frame(1, 3)[FEATURES])

    assert {invoke(line)[0] for _ in range(15)} == {"champion"}


@pytest.mark.parametrize(("name", "variant"), [("no-such-endpoint", None),
                                                (T.endpoint_name, "no-such-variant")])
def test_unknown_endpoint_or_variant_is_a_400_validation_error(
    served: dict[str, str], name: str, variant: str | None
) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    extra = {"TargetVariant": variant} if variant else {}

    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=b"1,2", **extra)

    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_record_of_the_wrong_width_is_a_model_error(served: dict[str, str]) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")

    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=T.endpoint_name, ContentType="text/csv",
                                Body=b"1,2,3", TargetVariant="champion")

    assert caught.value.response["Error"]["Code"] == "ModelError"


def test_a_model_in_another_container_than_the_training_one_is_not_served(
    served: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in serves as the XGBoost 3 container that trains: the old fixed 1.7-1 URI
    (which would misread the stored model's format) gets a model error, not answers."""
    from bot.settings import Settings, target

    old = target(T.name, Settings(xgboost_image="683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                                "sagemaker-xgboost:1.7-1"))
    endpoint.reconcile(old, EndpointSpec(T.endpoint_name, (
        VariantSpec("champion", served["old"], 100),)), wait_delay=0)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=T.endpoint_name, ContentType="text/csv",
                                Body=csv(small_frame(1, 3)[FEATURES]).encode())
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "not 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1" in str(
        caught.value)


def test_update_endpoint_switches_variants_through_updating(aws: None) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    for name in ("m-old", "m-new"):
        sm.create_model(ModelName=name, ExecutionRoleArn=T.sagemaker_role_arn,
                        PrimaryContainer={"Image": xgboost_image(T), "ModelDataUrl": "s3://b/k"})
    sm.create_endpoint_config(EndpointConfigName="c-old", ProductionVariants=[
        {"VariantName": "champion", "ModelName": "m-old", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1.0}])
    sm.create_endpoint_config(EndpointConfigName="c-new", ProductionVariants=[
        {"VariantName": "champion", "ModelName": "m-old", "InitialInstanceCount": 2,
         "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 3.0},
        {"VariantName": "challenger", "ModelName": "m-new", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 0.0}])
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c-old")

    statuses = [sm.describe_endpoint(EndpointName="e")["EndpointStatus"] for _ in range(2)]
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c-new")
    updating = sm.describe_endpoint(EndpointName="e")
    updated = sm.describe_endpoint(EndpointName="e")

    assert statuses == ["Creating", "InService"]
    assert updating["EndpointStatus"] == "Updating"
    # As on SageMaker, the old config serves until the new one is InService.
    assert updating["EndpointConfigName"] == "c-old"
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "c-new"
    assert [v["VariantName"] for v in updating["ProductionVariants"]] == ["champion"]
    assert updated["EndpointStatus"] == "InService"
    assert "PendingDeploymentSummary" not in updated
    assert updated["EndpointConfigName"] == "c-new"
    assert [(v["VariantName"], v["CurrentWeight"], v["CurrentInstanceCount"])
            for v in updated["ProductionVariants"]] == [("champion", 3.0, 2),
                                                         ("challenger", 0.0, 1)]

    sm.update_endpoint_weights_and_capacities(EndpointName="e", DesiredWeightsAndCapacities=[
        {"VariantName": "challenger", "DesiredWeight": 1.0}])
    shifting = sm.describe_endpoint(EndpointName="e")
    variants = sm.describe_endpoint(EndpointName="e")["ProductionVariants"]

    assert shifting["EndpointStatus"] == "Updating"
    assert [(v["VariantName"], v["CurrentWeight"], v["DesiredWeight"])
            for v in shifting["ProductionVariants"]] == [("champion", 3.0, 3.0),
                                                        ("challenger", 0.0, 1.0)]
    assert [(v["VariantName"], v["CurrentWeight"], v["DesiredWeight"], v["CurrentInstanceCount"])
            for v in variants] == [("champion", 3.0, 3.0, 2), ("challenger", 1.0, 1.0, 1)]
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName="e", EndpointConfigName="c-none")


def test_the_old_config_answers_until_the_update_is_done(
    served: dict[str, str], models: dict[str, bytes]
) -> None:
    features = small_frame(5, 7)[FEATURES]
    sm = boto3.client("sagemaker", region_name="us-east-1")
    promoted = EndpointSpec(T.endpoint_name, (VariantSpec("champion", served["new"], 100),))
    endpoint._ensure_model(sm, T, served["new"])
    endpoint._ensure_config(sm, T, promoted, endpoint.config_name(T, promoted))
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="UpdateEndpoint",
                                 kind="endpoint", polls=3),))

    with faults.injected(plan):
        sm.update_endpoint(EndpointName=T.endpoint_name,
                           EndpointConfigName=endpoint.config_name(T, promoted))
        during = []
        while (status := sm.describe_endpoint(EndpointName=T.endpoint_name)[
                "EndpointStatus"]) != "InService":
            during.append((status, invoke(csv(features), TargetVariant="champion")[1]))
        _, after = invoke(csv(features), TargetVariant="champion")

    assert [s for s, _ in during] == ["Updating"] * 3
    for _, scores in during:
        np.testing.assert_array_equal(scores, direct(models["old"], features))
    np.testing.assert_array_equal(after, direct(models["new"], features))


def test_installing_the_extensions_twice_changes_nothing() -> None:
    import moto.sagemaker.urls
    import moto.sagemakerruntime.urls

    moto_gaps.install_moto_extensions()
    before = (dict(moto.sagemaker.urls.url_paths), dict(moto.sagemakerruntime.urls.url_paths))
    moto_gaps.install_moto_extensions()

    assert before == (dict(moto.sagemaker.urls.url_paths),
                      dict(moto.sagemakerruntime.urls.url_paths))


def test_local_aws_serves_production_set_up_by_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.config import default_user_config

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    execute_before = default_user_config.get("stepfunctions")
    messages: list[str] = []

    with aws_server.LocalAWS() as aws:
        assert aws.url.startswith("http://127.0.0.1:")
        assert os.environ["AWS_ENDPOINT_URL"] == aws.url
        assert f"export AWS_ENDPOINT_URL={aws.url}" in aws.export_lines()
        bootstrap.bootstrap(rows=3000, progress=messages.append)
        s3 = boto3.client("s3")
        ssm = boto3.client("ssm")
        sfn = boto3.client("stepfunctions")

        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        data_keys = {o["Key"] for o in s3.list_objects_v2(Bucket=T.data_bucket)["Contents"]}
        versioning = s3.get_bucket_versioning(Bucket=T.config_bucket)["Status"]
        parameters = {p["Name"]: p["Value"] for p in
                      ssm.get_parameters_by_path(Path=T.ssm_prefix)["Parameters"]}
        config = ProductionConfig.model_validate(yaml.safe_load(
            s3.get_object(Bucket=T.config_bucket, Key=T.config_key)["Body"].read()))
        role = boto3.client("iam").get_role(RoleName="fraud-detection-sagemaker")["Role"]
        machine = next(m for m in sfn.list_state_machines()["stateMachines"]
                       if m["name"] == T.state_machine_name)
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"],
                                        name="retrain-1")["executionArn"]
        status = "RUNNING"
        for _ in range(100):
            status = sfn.describe_execution(executionArn=execution)["status"]
            if status != "RUNNING":
                break
            time.sleep(0.05)
        live = endpoint.read(T)
        test_df = pd.read_parquet(__import__("io").BytesIO(s3.get_object(
            Bucket=T.data_bucket, Key="processed/test.parquet")["Body"].read()))
        features = test_df.drop(columns=["Class"]).head(5)
        _, served_scores = invoke(csv(features), TargetVariant="champion")
        model = s3.get_object(Bucket=T.artifacts_bucket, Key=config.model_artifact.split(
            f"s3://{T.artifacts_bucket}/", 1)[1])["Body"].read()

    assert {T.data_bucket, T.config_bucket, T.artifacts_bucket} <= buckets
    assert data_keys == {"processed/train.parquet", "processed/test.parquet"}
    assert versioning == "Enabled"
    assert parameters == {f"{T.ssm_prefix}/{k}": v for k, v in {
        "objective": "binary:logistic", "num_round": "50", "max_depth": "4", "eta": "0.3",
        "subsample": "1.0", "colsample_bytree": "1.0"}.items()}
    assert config.champion is not None
    assert config.champion.model_artifact == config.model_artifact
    digest = hashlib.sha256(model).hexdigest()  # stored by the digest of its bytes
    assert config.model_artifact == (
        f"s3://{T.artifacts_bucket}/promotion-bot/models/sha256/{digest}/model.tar.gz")
    assert config.approvers == ["data-science-team"]
    assert config.approval_source == "seed"
    assert config.commit == "0000000"
    assert config.content_sha256 == bootstrap.champion_request(T).content_sha256()
    assert role["Arn"] == T.sagemaker_role_arn
    assert status == "SUCCEEDED"
    assert live == EndpointSpec(T.endpoint_name,
                                (VariantSpec("champion", config.model_artifact, 100),))
    np.testing.assert_array_equal(served_scores, direct(model, features))
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert default_user_config.get("stepfunctions") == execute_before
    assert any("production is set up" in m for m in messages)


def test_the_champion_is_trained_once_and_then_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    said: list[str] = []

    first = bootstrap._champion(2000, 0, said.append)
    second = bootstrap._champion(2000, 0, said.append)
    for entry in (tmp_path / "promotion-bot").iterdir():
        entry.write_text("{broken")
    third = bootstrap._champion(2000, 0, said.append)

    assert first == second == third
    with pytest.raises(BotError, match="at least 2,000 rows"):
        bootstrap.bootstrap(rows=1000)
    assert [m.split()[0] for m in said] == ["training", "reusing", "training"]


def test_local_aws_command_serves_until_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.commands import local_aws as command

    def stop_when_serving() -> None:
        """Like Ctrl-C in another terminal: a signal once the command waits for one."""
        deadline = time.monotonic() + 30
        while signal.getsignal(signal.SIGTERM) is before and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(bootstrap, "bootstrap", lambda **_: None)
    before = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=stop_when_serving, daemon=True).start()

    code = command.run(argparse.Namespace(port=0, rows=10, faults=None))

    out = capsys.readouterr()
    assert code == 0
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in out.out
    assert "Traceback" not in out.err
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert "stopping local AWS" in out.err
    assert signal.getsignal(signal.SIGTERM) is before  # handlers given back
    assert "stopping local AWS" in out.err
    assert signal.getsignal(signal.SIGTERM) is before  # handlers given back
