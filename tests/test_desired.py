"""What merging a request makes true in AWS, derived without touching AWS."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from conftest import a_plan

from bot.core.desired_state import execution_name
from bot.core.domain import Approval, Change, EndpointSpec, LiveState, Plan, VariantSpec
from bot.core.production_config import ChampionModel, ProductionConfig
from bot.core.request import Request
from bot.flows import resources
from bot.flows.resources.base import Context
from bot.settings import target

T = target("fraud-detection")
HYPER = {"objective": "binary:logistic", "num_round": 150, "max_depth": 7, "eta": 0.15,
         "subsample": 0.8, "colsample_bytree": 0.8}
CHAMP = ChampionModel(experiment_id="exp-old",
                      model_artifact="s3://fraud-detection-models/m/old/model.tar.gz",
                      metrics={"accuracy": 0.99})


def request(share: int | None = 1, pipeline: bool = True, **hyper: Any) -> Request:
    rollout: dict[str, Any] = {"pipeline": pipeline}
    if share is not None:
        rollout["challenger"] = {"traffic_percent": share}
    return Request.model_validate({
        "experiment_id": "exp-new", "algorithm": "xgboost",
        "hyperparameters": {**HYPER, **hyper},
        "data": {"train": "s3://d/train.parquet", "test": "s3://d/test.parquet"},
        "rollout": rollout,
    })


def plan_of(r: Request) -> Plan:
    return a_plan(r, accuracy=0.995, artifact="s3://fraud-detection-models/m/new/model.tar.gz")


def live_config(champion: ChampionModel | None = CHAMP,
                previous: ChampionModel | None = None, share: int | None = None
                ) -> ProductionConfig:
    r = request(None, num_round=50)
    return ProductionConfig(
        target="fraud-detection", algorithm="xgboost", experiment_id="exp-old",
        hyperparameters=r.hyperparameters, metrics={"accuracy": 0.99},
        test_date="2026-01-01T00:00:00+00:00", approvers=["a"], approval_source="seed",
        commit="0000000", content_sha256="0" * 64,
        model_artifact=champion.model_artifact if champion else "s3://x/y",
        champion=champion, previous_champion=previous, challenger_traffic_percent=share)


def context(r: Request) -> Context:
    return Context(T, r, plan_of(r), "abcdef1234567890", 7,
                   Approval(("maria",), "github-reviews"))


def want(r: Request, live: ProductionConfig | None) -> Any:
    """Every resource's desired state, by the built-in kinds' names."""
    d = resources.desired_state(context(r), LiveState({"s3-config": live}))
    return SimpleNamespace(ssm=d["ssm"], config=d["s3-config"], pipeline=d["pipeline"],
                           endpoint=d["endpoint"], request=r, all=d)


def changes(d: Any, live: LiveState) -> tuple[Change, ...]:
    return resources.changes(context(d.request), d.all, live)


def test_challenger_gets_its_share_beside_the_champion() -> None:
    d = want(request(10), live_config())
    assert d.endpoint == EndpointSpec("fraud-detection-production", (
        VariantSpec("champion", CHAMP.model_artifact, 90),
        VariantSpec("challenger", "s3://fraud-detection-models/m/new/model.tar.gz", 10)))
    assert d.config.challenger_traffic_percent == 10
    assert d.config.champion == CHAMP


def test_share_100_promotes_the_challenger_and_keeps_the_old_champion_for_rollback() -> None:
    d = want(request(100), live_config())
    assert d.endpoint is not None
    assert [v.name for v in d.endpoint.variants] == ["champion"]
    assert d.endpoint.variants[0].model_data_url.endswith("/new/model.tar.gz")
    assert d.config.previous_champion == CHAMP
    assert d.config.challenger_traffic_percent is None


def test_reapplying_a_promotion_keeps_the_previous_champion() -> None:
    promoted = want(request(100), live_config()).config
    again = want(request(100), promoted).config
    assert again.previous_champion == CHAMP
    assert again.champion == promoted.champion


def test_revert_of_a_promotion_brings_the_previous_champion_back() -> None:
    promoted = want(request(100), live_config()).config
    reverted = want(request(50), promoted)
    assert reverted.config.champion == CHAMP
    assert reverted.endpoint is not None
    assert [(v.name, v.weight) for v in reverted.endpoint.variants] == [
        ("champion", 50), ("challenger", 50)]


def test_first_model_ever_becomes_the_champion() -> None:
    d = want(request(1), None)
    assert d.endpoint is not None
    assert [(v.name, v.weight) for v in d.endpoint.variants] == [("champion", 100)]


def test_execution_name_is_stable_and_valid() -> None:
    name = execution_name(T, "abcdef1234567890", request(1))
    assert name == execution_name(T, "abcdef1234567890", request(1))
    assert len(name) <= 80 and name.startswith("fraud-detection-abcdef123456-")


def test_a_rollout_step_does_not_name_a_new_retraining() -> None:
    assert execution_name(T, "c0ffee", request(1)) == execution_name(T, "c0ffee", request(10))
    assert execution_name(T, "c0ffee", request(1)) != execution_name(
        T, "c0ffee", request(1, max_depth=8))


@pytest.mark.parametrize("pipeline", [True, False])
def test_changes_list_ssm_config_pipeline_and_endpoint(pipeline: bool) -> None:
    live_cfg = live_config()
    r = request(1, pipeline=pipeline)
    d = want(r, live_cfg)
    live = LiveState({
        "ssm": {k: str(v) for k, v in live_cfg.hyperparameters.as_dict().items()},
        "s3-config": live_cfg,
        "endpoint": EndpointSpec(T.endpoint_name, (VariantSpec("champion", CHAMP.model_artifact,
                                                               100),)),
    })
    found = changes(d, live)
    ssm = [c for c in found if c.target == "ssm"]
    assert [(c.key, c.before, c.after) for c in ssm] == [
        ("/fraud-detection/hyperparameters/num_round", "50", "150")]
    assert not any(c.drift for c in found)
    assert any(c.target == "pipeline" for c in found) is pipeline
    endpoint = {c.key: c for c in found if c.target == "endpoint"}
    assert set(endpoint) == {"fraud-detection-production/champion",
                             "fraud-detection-production/challenger"}
    assert endpoint["fraud-detection-production/challenger"].before is None


def test_hand_made_ssm_change_is_drift() -> None:
    live_cfg = live_config()
    ssm = {k: str(v) for k, v in live_cfg.hyperparameters.as_dict().items()}
    ssm["eta"] = "0.9"  # changed by hand since main applied
    found = changes(want(request(None), live_cfg),
                    LiveState({"ssm": ssm, "s3-config": live_cfg, "endpoint": None}))
    eta = next(c for c in found if c.key.endswith("/eta"))
    assert eta.drift and eta.before == "0.9" and eta.after == "0.15"
    assert not next(c for c in found if c.key.endswith("/num_round")).drift


def test_nothing_to_change_when_live_matches() -> None:
    r = request(10)
    d = want(r, live_config())
    live = LiveState({"ssm": d.ssm, "s3-config": d.config, "endpoint": d.endpoint,
                      "pipeline": True,
                      "alarms": {spec.name: spec for spec in d.all["alarms"]}})
    assert changes(d, live) == ()
    # The challenger's alarms: the bot's two, with the request's default thresholds.
    assert [c.key for c in changes(d, LiveState({**live.resources, "alarms": {}}))] == [
        "fraud-detection-challenger-error-rate", "fraud-detection-challenger-latency"]
