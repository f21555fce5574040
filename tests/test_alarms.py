"""The alarms apply keeps on the challenger, and no step up while one of them fires: created
with the request's thresholds, removed when the challenger goes, a step up refused naming the
alarm with production unchanged, a step down or a removal always applied, INSUFFICIENT_DATA
shown on the plan but never blocking (moto in-process, real git)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from conftest import GitRepo, request_yaml

from bot import cli
from bot.adapters.aws import config_store, endpoint
from bot.core.domain import Plan
from bot.core.request import Request
from bot.errors import RolloutRefused
from bot.flows.apply import apply
from bot.flows.plan import alarm_notes
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"

pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


#: The rollout's steps without soaks: only the alarms stop a step here.
STEPS = "    steps:\n" + "".join(f"      - percent: {p}\n        soak_hours: 0\n"
                                 for p in (1, 10, 50, 100))


def at(share: int, alarms: str = "") -> str:
    """The challenger at ``share`` percent; ``alarms``: lines under its ``alarms:``."""
    block = "    alarms:\n" + "".join(f"      {line}\n" for line in alarms.split(";") if line)
    return request_yaml("exp-xgboost-1", rollout=(
        f"rollout:\n  challenger:\n{STEPS}    traffic_percent: {share}\n"
        + (block if alarms else "")))


THRESHOLDS = "error_rate: 0.02;latency_ms: 250;period_minutes: 3;evaluation_periods: 4"


def cloudwatch(t: Target) -> Any:
    return boto3.client("cloudwatch", region_name=t.region)


def alarms_of(t: Target) -> dict[str, dict[str, Any]]:
    found = cloudwatch(t).describe_alarms(AlarmNamePrefix=f"{t.name}-")["MetricAlarms"]
    return {a["AlarmName"]: a for a in found}


def set_state(t: Target, name: str, state: str, reason: str) -> None:
    cloudwatch(t).set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


def step(repo: GitRepo, store_plan: Callable[..., Plan], text: str, message: str) -> str:
    """Commit ``text`` (planned) on top of the head; returns the commit before it."""
    store_plan(text)
    before = repo.head()
    repo.commit({PATH: text}, message)
    return before


def challenger_weight(t: Target) -> int | None:
    live = endpoint.read(t)
    variant = live.variant("challenger") if live is not None else None
    return variant.weight if variant is not None else None


@pytest.fixture
def serving_one_percent(aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan]
                        ) -> str:
    """A champion, then a challenger at 1 % with its own thresholds, applied; the head."""
    champion = request_yaml("exp-champion", eta=0.3)
    apply(git_repo.path, step(git_repo, store_plan, champion, "Champion"), "HEAD", None)
    assert alarms_of(aws) == {}  # a champion alone is guarded by nothing
    apply(git_repo.path, step(git_repo, store_plan, at(1, THRESHOLDS), "Challenger at 1 %"),
          "HEAD", None)
    return git_repo.head()


def test_apply_creates_the_challengers_alarms_with_the_requests_thresholds(
        aws: Target, serving_one_percent: str) -> None:
    found = alarms_of(aws)
    assert set(found) == {f"{aws.name}-challenger-error-rate", f"{aws.name}-challenger-latency"}
    errors, latency = found[f"{aws.name}-challenger-error-rate"], found[
        f"{aws.name}-challenger-latency"]
    assert (errors["Threshold"], errors["EvaluationPeriods"]) == (0.02, 4)
    stats = {m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]
             for m in errors["Metrics"] if "MetricStat" in m}
    assert set(stats) == {"Invocation5XXErrors", "Invocations"}
    assert {s["Period"] for s in stats.values()} == {180}
    dimensions = [{"Name": "EndpointName", "Value": aws.endpoint_name},
                  {"Name": "VariantName", "Value": "challenger"}]
    assert all(s["Metric"]["Dimensions"] == dimensions for s in stats.values())
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("ModelLatency", "p99")
    assert (latency["Threshold"], latency["Period"]) == (250_000, 180)  # microseconds
    assert latency["Dimensions"] == dimensions


def test_new_thresholds_update_the_alarms_and_a_second_apply_changes_nothing(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    before = step(git_repo, store_plan, at(1, "error_rate: 0.05"), "Looser error rate")
    [outcome] = apply(git_repo.path, before, "HEAD", None)
    changed = {c.key: (c.before, c.after) for c in outcome.changes if c.target == "alarms"}
    name = f"{aws.name}-challenger-error-rate"
    assert set(changed) == {name, f"{aws.name}-challenger-latency"}  # all back to defaults
    assert "2.00%" in changed[name][0] and "5.00%" in changed[name][1]
    assert alarms_of(aws)[name]["Threshold"] == 0.05
    assert alarms_of(aws)[f"{aws.name}-challenger-latency"]["Threshold"] == 500_000
    [again] = apply(git_repo.path, before, "HEAD", None)
    assert [c for c in again.changes if c.target == "alarms"] == []


def test_the_alarms_go_when_the_challenger_goes(
        aws: Target, git_repo: GitRepo, serving_one_percent: str) -> None:
    set_state(aws, f"{aws.name}-challenger-latency", "ALARM", "p99 above 250 ms")
    before = git_repo.head()
    git_repo.commit({PATH: None}, "Retire the challenger")
    [outcome] = apply(git_repo.path, before, "HEAD", None)  # firing: still allowed
    assert alarms_of(aws) == {}
    assert {c.key for c in outcome.changes if c.target == "alarms" and c.after is None} == {
        f"{aws.name}-challenger-error-rate", f"{aws.name}-challenger-latency"}
    assert challenger_weight(aws) is None


def test_a_step_up_while_an_alarm_fires_is_refused_naming_it_and_changes_nothing(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"{aws.name}-challenger-error-rate"
    set_state(aws, name, "ALARM", "Threshold Crossed: 3.1% of invocations answered 5xx")
    thresholds = {n: a["Threshold"] for n, a in alarms_of(aws).items()}
    before = step(git_repo, store_plan, at(10, "error_rate: 0.5"), "Step up to 10 %")

    with pytest.raises(RolloutRefused) as caught:
        apply(git_repo.path, before, "HEAD", None)
    assert caught.value.message == (
        f"{PATH} at {git_repo.head()[:12]}: no step up while an alarm fires: {name} is in ALARM "
        "(Threshold Crossed: 3.1% of invocations answered 5xx); raising the challenger's traffic "
        "from 1% to 10% waits until it is OK (going down or removing the challenger is always "
        "allowed); nothing was applied")
    config = config_store.read(aws)
    assert config is not None and config.challenger_traffic_percent == 1
    assert challenger_weight(aws) == 1
    assert {n: a["Threshold"] for n, a in alarms_of(aws).items()} == thresholds  # not loosened

    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", before]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err and err.rstrip().endswith("nothing was applied")

    set_state(aws, name, "OK", "back under the threshold")
    [outcome] = apply(git_repo.path, before, "HEAD", None)
    assert challenger_weight(aws) == 10 and not outcome.noop


def test_a_listed_alarm_of_the_teams_also_stops_a_promotion(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    cloudwatch(aws).put_metric_alarm(
        AlarmName=f"{aws.name}-chargebacks", Namespace="Fraud", MetricName="Chargebacks",
        Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=10,
        ComparisonOperator="GreaterThanThreshold")
    set_state(aws, f"{aws.name}-chargebacks", "ALARM", "chargebacks doubled")
    promote = request_yaml("exp-xgboost-1", rollout=(
        "rollout:\n  challenger:\n    traffic_percent: 100\n"
        "    override_reason: urgent fix for the fraud spike\n"
        "    alarms:\n      names: [fraud-detection-chargebacks]\n"))
    before = step(git_repo, store_plan, promote, "Promote")
    with pytest.raises(RolloutRefused, match=r"fraud-detection-chargebacks is in ALARM "
                                             r"\(chargebacks doubled\); promoting the "
                                             r"challenger to 100%"):
        apply(git_repo.path, before, "HEAD", None)
    assert challenger_weight(aws) == 1


def test_a_step_down_while_an_alarm_fires_is_applied(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    apply(git_repo.path, step(git_repo, store_plan, at(10), "Step up to 10 %"), "HEAD", None)
    assert challenger_weight(aws) == 10
    set_state(aws, f"{aws.name}-challenger-latency", "ALARM", "p99 above 500 ms")
    store_plan(at(1))  # the same content as the first step: planned already
    before = git_repo.head()
    git_repo.commit({PATH: at(1)}, "Back to 1 %")
    apply(git_repo.path, before, "HEAD", None)
    assert challenger_weight(aws) == 1
    config = config_store.read(aws)
    assert config is not None and config.challenger_traffic_percent == 1


def test_insufficient_data_does_not_block_and_is_shown_on_the_plan(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    name = f"{aws.name}-challenger-latency"
    set_state(aws, name, "INSUFFICIENT_DATA", "no invocations yet")
    request = Request.model_validate(yaml.safe_load(at(10)))
    notes = alarm_notes(aws, request, config_store.read(aws), endpoint.read(aws))
    assert notes == (f"Alarm {name} is in INSUFFICIENT_DATA (no invocations yet): it does not "
                     "block a step",)
    apply(git_repo.path, step(git_repo, store_plan, at(10), "Step up to 10 %"), "HEAD", None)
    assert challenger_weight(aws) == 10


def test_the_plan_says_apply_refuses_a_step_up_and_names_a_missing_listed_alarm(
        aws: Target, serving_one_percent: str) -> None:
    name = f"{aws.name}-challenger-error-rate"
    set_state(aws, name, "ALARM", "5xx share 4%")
    up = Request.model_validate(yaml.safe_load(at(10, "names: [fraud-detection-missing]")))
    notes = alarm_notes(aws, up, config_store.read(aws), endpoint.read(aws))
    assert notes == (
        "Alarm check: apply refuses this change: no step up while an alarm fires: "
        f"{name} is in ALARM (5xx share 4%); raising the challenger's traffic from 1% to 10% "
        "waits until it is OK (going down or removing the challenger is always allowed)",
        "Alarm fraud-detection-missing (rollout.challenger.alarms.names) does not exist in "
        "CloudWatch: it guards nothing until it is created")
    same = Request.model_validate(yaml.safe_load(at(1)))
    assert alarm_notes(aws, same, config_store.read(aws), endpoint.read(aws)) == ()


def test_validate_refuses_a_listed_alarm_not_named_after_the_target(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fraud-detection.yaml"
    path.write_text(at(1, "names: [fraud-detection-chargebacks, chargebacks]"))
    assert cli.main(["validate", str(path)]) == 1
    err = "".join(capsys.readouterr())
    assert f"{path}:26: rollout.challenger.alarms.names.1: must begin with fraud-detection- " \
        "(got 'chargebacks'): the bot may read only the target's own alarms" in err
    path.write_text(at(1, "names: [fraud-detection-chargebacks]"))
    assert cli.main(["validate", str(path)]) == 0


def test_after_the_watchers_brake_going_back_down_is_applied_and_restoring_the_share_is_not(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    apply(git_repo.path, step(git_repo, store_plan, at(10), "Step up to 10 %"), "HEAD", None)
    name = f"{aws.name}-challenger-error-rate"
    set_state(aws, name, "ALARM", "5xx share 7%")
    endpoint.brake(aws, wait_delay=0)
    assert challenger_weight(aws) == 0  # the config still says 10 %
    again = at(10).replace("data:\n", "description: same share, new words\ndata:\n")
    before = step(git_repo, store_plan, again, "Same 10 %, new description")
    with pytest.raises(RolloutRefused, match="raising the challenger's traffic from 0% to 10%"):
        apply(git_repo.path, before, "HEAD", None)
    assert challenger_weight(aws) == 0
    apply(git_repo.path, step(git_repo, store_plan, at(1), "Back to 1 %"), "HEAD", None)
    assert challenger_weight(aws) == 1
