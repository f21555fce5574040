"""The production endpoint's variants: create, shift traffic, add a challenger, promote, resume."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.adapters.aws import clients, endpoint
from bot.adapters.aws.images import xgboost_image
from bot.core.domain import EndpointSpec, VariantSpec
from bot.errors import BotError
from bot.local import faults
from bot.local.faults import FaultPlan, Rule
from bot.settings import target

T = target("fraud-detection")
OLD = "s3://fraud-detection-models/promotion-bot/models/aaa/model.tar.gz"
NEW = "s3://fraud-detection-models/promotion-bot/models/bbb/model.tar.gz"
CHANGING = {"CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint",
            "UpdateEndpointWeightsAndCapacities", "DeleteEndpointConfig", "DeleteModel",
            "DeleteEndpoint", "AddTags", "DeleteTags"}


def spec(*variants: tuple[str, str, int]) -> EndpointSpec:
    return EndpointSpec(T.endpoint_name, tuple(VariantSpec(n, u, w) for n, u, w in variants))


@pytest.fixture
def aws(fake_credentials: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, aws: Any) -> list[str]:
    """The SageMaker operations reconcile makes, in order."""
    made: list[str] = []

    def recording_client(service: str, region: str | None = None) -> Any:
        sm = boto3.client(service, region_name=region or "us-east-1")  # not the shared one
        sm.meta.events.register("before-call.sagemaker.*",
                                lambda model, **_: made.append(model.name))
        return sm

    monkeypatch.setattr(endpoint, "client", recording_client)
    return made


def reconcile(wanted: EndpointSpec) -> endpoint.EndpointOutcome:
    return endpoint.reconcile(T, wanted, wait_delay=0)


def names(sm: Any) -> tuple[list[str], list[str]]:
    models = sorted(m["ModelName"] for m in sm.list_models()["Models"])
    configs = sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"])
    return models, configs


def test_first_apply_creates_the_endpoint_serving_the_champion(aws: Any) -> None:
    assert endpoint.read(T) is None
    wanted = spec(("champion", OLD, 100))

    outcome = reconcile(wanted)

    assert outcome.status == "InService"
    assert outcome.variants == wanted.variants
    assert endpoint.read(T) == wanted
    assert [a.split()[0:2] for a in outcome.actions] == [
        ["create", "model"], ["create", "endpoint"], ["create", "endpoint"]]
    model = endpoint.model_name(T, OLD)
    assert names(aws) == ([model], [endpoint.config_name(T, wanted)])
    described = aws.describe_model(ModelName=model)
    assert described["PrimaryContainer"] == {"Image": xgboost_image(T), "ModelDataUrl": OLD}
    assert described["ExecutionRoleArn"] == T.sagemaker_role_arn
    tags = aws.list_tags(ResourceArn=described["ModelArn"])["Tags"]
    assert {"Key": "promotion-bot:managed", "Value": "true"} in tags


def test_rerun_changes_nothing(aws: Any, calls: list[str]) -> None:
    reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))
    calls.clear()

    outcome = reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))

    assert outcome.actions == ()
    assert not CHANGING & set(calls)


def test_traffic_shift_only_updates_the_weights(aws: Any, calls: list[str]) -> None:
    reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))
    config = aws.describe_endpoint(EndpointName=T.endpoint_name)["EndpointConfigName"]
    calls.clear()

    outcome = reconcile(spec(("champion", OLD, 50), ("challenger", NEW, 50)))

    assert outcome.actions == ("set weights champion 90% → 50%, challenger 10% → 50%",)
    assert CHANGING & set(calls) == {"UpdateEndpointWeightsAndCapacities"}
    live = endpoint.read(T)
    assert live is not None
    assert [(v.name, v.weight) for v in live.variants] == [("champion", 50), ("challenger", 50)]
    assert aws.describe_endpoint(EndpointName=T.endpoint_name)["EndpointConfigName"] == config


def test_adding_a_challenger_deploys_a_new_config_and_removes_the_old(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    wanted = spec(("champion", OLD, 99), ("challenger", NEW, 1))

    outcome = reconcile(wanted)

    assert endpoint.read(T) == wanted
    assert names(aws) == (sorted([endpoint.model_name(T, OLD), endpoint.model_name(T, NEW)]),
                          [endpoint.config_name(T, wanted)])
    assert any(a.startswith("update endpoint") for a in outcome.actions)
    assert any(a.startswith("delete endpoint config") for a in outcome.actions)


def test_promotion_leaves_only_the_new_champion(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 50), ("challenger", NEW, 50)))
    promoted = spec(("champion", NEW, 100))

    outcome = reconcile(promoted)

    assert endpoint.read(T) == promoted
    assert names(aws) == ([endpoint.model_name(T, NEW)], [endpoint.config_name(T, promoted)])
    assert f"delete model {endpoint.model_name(T, OLD)}" in outcome.actions
    assert reconcile(promoted).actions == ()


def test_rerun_after_a_crash_before_the_update_finishes_the_job(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconcile(spec(("champion", OLD, 100)))
    wanted = spec(("champion", OLD, 90), ("challenger", NEW, 10))

    def crashing_client(service: str, region: str | None = None) -> Any:
        sm = boto3.client(service, region_name=region or "us-east-1")  # not the shared one

        def crash(**_: Any) -> None:
            raise RuntimeError("runner killed")

        sm.meta.events.register("before-call.sagemaker.UpdateEndpoint", crash)
        return sm

    monkeypatch.setattr(endpoint, "client", crashing_client)
    with pytest.raises(RuntimeError):
        reconcile(wanted)
    monkeypatch.setattr(endpoint, "client", clients.client)

    outcome = reconcile(wanted)

    assert endpoint.read(T) == wanted
    assert not any(a.startswith("create") for a in outcome.actions)
    assert outcome.actions[0].startswith("update endpoint")
    assert len(names(aws)[1]) == 1


def test_resources_the_bot_did_not_create_are_kept(aws: Any) -> None:
    container = {"Image": xgboost_image(T), "ModelDataUrl": OLD}
    for name in ("fraud-detection-0123456789abcdef", "fraud-detection-by-hand"):
        aws.create_model(ModelName=name, PrimaryContainer=container,
                         ExecutionRoleArn=T.sagemaker_role_arn)
    reconcile(spec(("champion", OLD, 100)))
    reconcile(spec(("champion", NEW, 100)))

    models, _ = names(aws)

    assert "fraud-detection-0123456789abcdef" in models
    assert "fraud-detection-by-hand" in models
    assert endpoint.model_name(T, OLD) not in models


def test_a_variant_at_weight_zero_keeps_its_zero(aws: Any) -> None:
    wanted = spec(("champion", OLD, 100), ("challenger", NEW, 0))

    reconcile(wanted)

    assert endpoint.read(T) == wanted


def test_weights_that_do_not_take_effect_fail_the_apply(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))

    def ignoring_client(service: str, region: str | None = None) -> Any:
        sm = boto3.client(service, region_name=region or "us-east-1")  # not the shared one

        def keep_old_weights(params: dict[str, Any], **_: Any) -> None:
            for change in params["DesiredWeightsAndCapacities"]:
                change["DesiredWeight"] = 90.0 if change["VariantName"] == "champion" else 10.0

        sm.meta.events.register(
            "provide-client-params.sagemaker.UpdateEndpointWeightsAndCapacities",
            keep_old_weights)
        return sm

    monkeypatch.setattr(endpoint, "client", ignoring_client)
    with pytest.raises(BotError, match="does not serve what was asked"):
        reconcile(spec(("champion", OLD, 50), ("challenger", NEW, 50)))


def states(sm: Any, count: int) -> list[str]:
    return [sm.describe_endpoint(EndpointName=T.endpoint_name)["EndpointStatus"]
            for _ in range(count)]


def test_an_endpoint_that_fails_to_be_created_is_a_clear_error(aws: Any) -> None:
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="CreateEndpoint",
                                 kind="endpoint", polls=2, outcome="Failed",
                                 reason="image not found"),))
    with faults.injected(plan), pytest.raises(BotError) as caught:
        reconcile(spec(("champion", OLD, 100)))

    assert caught.value.message == (
        f"endpoint {T.endpoint_name} is Failed: image not found; SageMaker allows only "
        "DeleteEndpoint on a failed endpoint: delete it, then rerun apply to recreate it")


def test_an_update_keeps_the_old_config_serving_until_it_rolls_back(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    before = endpoint.read(T)
    config = aws.describe_endpoint(EndpointName=T.endpoint_name)["EndpointConfigName"]
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="UpdateEndpoint",
                                 kind="endpoint", polls=2, outcome="RolledBack",
                                 reason="the new variant failed its health check"),))
    with faults.injected(plan) as injector:
        with pytest.raises(BotError) as caught:
            reconcile(spec(("champion", NEW, 100)))
        assert len(injector.injected()) == 1

    assert caught.value.message == (
        f"AWS rolled endpoint {T.endpoint_name} back: the new variant failed its health "
        f"check; production serves the previous models (champion 100%, endpoint config "
        f"{config}); fix the cause, then rerun apply to try again")
    assert endpoint.read(T) == before
    assert reconcile(spec(("champion", NEW, 100))).variants == spec(("champion", NEW, 100)
                                                                     ).variants  # a rerun


def test_the_states_of_an_update_that_rolls_back(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    wanted = spec(("champion", OLD, 90), ("challenger", NEW, 10))
    endpoint._ensure_model(aws, T, NEW)
    endpoint._ensure_config(aws, T, wanted, endpoint.config_name(T, wanted))
    old = aws.describe_endpoint(EndpointName=T.endpoint_name)["EndpointConfigName"]
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="UpdateEndpoint",
                                 kind="endpoint", polls=2, outcome="RolledBack"),))
    with faults.injected(plan):
        aws.update_endpoint(EndpointName=T.endpoint_name,
                            EndpointConfigName=endpoint.config_name(T, wanted))
        updating = aws.describe_endpoint(EndpointName=T.endpoint_name)
        seen = states(aws, 3)

    assert (updating["EndpointStatus"], updating["EndpointConfigName"]) == ("Updating", old)
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == endpoint.config_name(
        T, wanted)
    assert seen == ["Updating", "RollingBack", "InService"]
    after = aws.describe_endpoint(EndpointName=T.endpoint_name)
    assert after["EndpointConfigName"] == old and "FailureReason" in after


def test_a_weight_change_that_rolls_back_says_so(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 90), ("challenger", NEW, 10)))
    plan = FaultPlan(rules=(Rule(service="sagemaker",
                                 operation="UpdateEndpointWeightsAndCapacities",
                                 kind="endpoint", outcome="RolledBack",
                                 reason="autoscaling could not add instances"),))
    with faults.injected(plan), pytest.raises(
            BotError, match=r"does not serve what was asked after reconciling \(the change was "
                            r"rolled back: autoscaling could not add instances\): live "
                            r"champion=.*@90%"):
        reconcile(spec(("champion", OLD, 50), ("challenger", NEW, 50)))


def test_an_update_whose_rollback_failed_stops_apply_until_a_person_fixes_it(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="UpdateEndpoint",
                                 kind="endpoint", outcome="UpdateRollbackFailed",
                                 reason="rollback timed out"),))
    with faults.injected(plan), pytest.raises(BotError) as caught:
        reconcile(spec(("champion", NEW, 100)))
    with pytest.raises(BotError) as again:  # a rerun does not make it worse
        reconcile(spec(("champion", NEW, 100)))

    for error in (caught.value, again.value):
        assert error.message == (
            f"endpoint {T.endpoint_name} is UpdateRollbackFailed: rollback timed out; both the "
            "update and its automatic rollback failed, so it serves a mix of the old and new "
            "configs: update it to one config in the SageMaker console (or delete it), then "
            "rerun apply")


def test_maintenance_is_waited_out_before_the_update(aws: Any, calls: list[str]) -> None:
    reconcile(spec(("champion", OLD, 100)))
    calls.clear()
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="DescribeEndpoint",
                                 kind="endpoint-state", state="SystemUpdating", polls=3,
                                 times=1),))
    with faults.injected(plan) as injector:
        outcome = reconcile(spec(("champion", NEW, 100)))

    assert len(injector.injected()) == 1
    assert endpoint.read(T) == spec(("champion", NEW, 100))
    assert outcome.status == "InService"
    update = calls.index("UpdateEndpoint")
    assert calls[:update].count("DescribeEndpoint") >= 4  # 3 in maintenance, then InService


def test_an_endpoint_out_of_service_is_a_clear_error(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="DescribeEndpoint",
                                 kind="endpoint-state", state="OutOfService", polls=None,
                                 times=1),))
    with faults.injected(plan), pytest.raises(
            BotError, match=r"is OutOfService; it takes no requests: bring it back or delete "
                            r"it, then rerun apply"):
        reconcile(spec(("champion", NEW, 100)))


def test_an_update_slower_than_the_wait_is_a_clear_error(aws: Any) -> None:
    reconcile(spec(("champion", OLD, 100)))
    plan = FaultPlan(rules=(Rule(service="sagemaker", operation="UpdateEndpoint",
                                 kind="endpoint", polls=1000),))
    with faults.injected(plan), pytest.raises(
            BotError, match=r"still Updating after 0 s \(PROMOTION_BOT_ENDPOINT_WAIT_SECONDS\); "
                            r"rerun apply to continue once it is InService"):
        endpoint.reconcile(T, spec(("champion", NEW, 100)), wait_delay=0, wait_timeout=0)


def test_names_are_valid_sagemaker_names() -> None:
    pattern = endpoint.NAME_PATTERN
    assert pattern.match(endpoint.model_name(T, OLD))
    assert pattern.match(endpoint.config_name(T, spec(("champion", OLD, 100))))
    assert endpoint.model_name(T, OLD) != endpoint.model_name(T, NEW)
    with pytest.raises(BotError, match="not a valid SageMaker name"):
        endpoint.model_name(target("x" * 50), OLD)


def test_a_spec_whose_weights_do_not_add_up_is_refused(aws: Any) -> None:
    with pytest.raises(BotError, match="add up to 100"):
        reconcile(spec(("champion", OLD, 60), ("challenger", NEW, 10)))
    assert endpoint.read(T) is None


def test_models_serve_in_the_training_container_of_the_targets_region(aws: Any) -> None:
    """One XGBoost container version trains and serves, looked up per region (not a fixed
    us-east-1 URI); another version is another model and another endpoint config."""
    from bot.settings import Settings

    frankfurt = target("fraud-detection", Settings(region="eu-central-1"))
    wanted = EndpointSpec(frankfurt.endpoint_name, (VariantSpec("champion", OLD, 100),))
    endpoint.reconcile(frankfurt, wanted, wait_delay=0)
    described = boto3.client("sagemaker", region_name="eu-central-1").describe_model(
        ModelName=endpoint.model_name(frankfurt, OLD))
    assert described["PrimaryContainer"]["Image"] == (
        "492215442770.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-xgboost:3.0-5")

    older = target("fraud-detection", Settings(xgboost_image_version="1.7-1"))
    assert endpoint.model_name(older, OLD) != endpoint.model_name(T, OLD)
    assert endpoint.config_name(older, spec(("champion", OLD, 100))) != endpoint.config_name(
        T, spec(("champion", OLD, 100)))
