"""The SageMaker Model Registry mirrors git: plan registers each planned model once,
``PendingManualApproval``, in the target's group; apply approves what it deploys; a revert or
the watcher's brake rejects what leaves production, with the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest
import yaml
from conftest import GitRepo, a_plan, request_yaml

from bot import cli
from bot.adapters.aws import artifacts, clients, lock, registry
from bot.core import model_registry as mr
from bot.core import names
from bot.core.domain import Change, Plan, PlanIdentity
from bot.core.integrity import sha256_hex
from bot.core.request import Request
from bot.flows.apply import apply
from bot.settings import Target, settings, target


def _plan(t: Target, experiment: str = "exp-xgboost-1") -> Plan:
    request = Request.model_validate(yaml.safe_load(request_yaml(experiment)))
    artifact = artifacts.put_model(t, "k" * 64, f"model of {experiment}".encode())
    return replace(a_plan(request, t.name, artifact=artifact), identity=PlanIdentity(
        head="a" * 40, data_versions={"train": "v1", "test": "sha-of/test"},
        champion_model_sha256=None, production_config_version=None, bot_version="0",
        signed_at="2026-12-04T10:00:00+00:00"))


def _register(t: Target, plan: Plan, pull_request: int | None = 7) -> mr.Registered:
    return registry.register(t, plan, image=lambda: "xgboost:3.0-5", pull_request=pull_request,
                             plan_digest="d" * 64, metrics_uri="s3://b/plans/x/m.json",
                             metrics_sha256="e" * 64)


def test_a_model_is_registered_once_pending_with_its_plan_as_metadata(aws: Target) -> None:
    plan = _plan(aws)
    first = _register(aws, plan)
    again = _register(aws, plan, pull_request=8)

    assert again == first and first.status == "PendingManualApproval"
    sm = boto3.client("sagemaker", region_name=aws.region)
    listed = sm.list_model_packages(ModelPackageGroupName="fraud-detection")
    assert len(listed["ModelPackageSummaryList"]) == 1
    found = sm.describe_model_package(ModelPackageName=first.arn)
    assert found["ModelApprovalStatus"] == "PendingManualApproval"
    assert found["ModelPackageGroupName"] == "fraud-detection"
    assert found["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == plan.artifact
    assert found["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json", "S3Uri": "s3://b/plans/x/m.json",
        "ContentDigest": "sha256:" + "e" * 64}
    metadata = found["CustomerMetadataProperties"]
    assert metadata["promotion-bot:pull-request"] == "7"
    assert metadata["promotion-bot:head"] == "a" * 40
    assert metadata["promotion-bot:plan-sha256"] == "d" * 64
    assert metadata["promotion-bot:data-version:train"] == "v1"
    assert metadata["promotion-bot:data-version:test"] == "sha-of/test"
    assert metadata["promotion-bot:model-sha256"] == plan.model_sha256


def test_reject_sets_rejected_with_the_reason_and_keeps_the_metadata(aws: Target) -> None:
    plan = _plan(aws)
    arn = _register(aws, plan).arn

    assert registry.reject(aws, plan.artifact, "braked: fraud-detection-5xx in ALARM") == arn
    assert registry.reject(aws, plan.artifact, "a second run") == arn

    found = registry.describe(aws, arn)
    assert found.status == "Rejected"
    assert found.approval_description == "braked: fraud-detection-5xx in ALARM"
    assert found.metadata["promotion-bot:pull-request"] == "7"


def test_reject_of_a_model_never_registered_is_none(aws: Target) -> None:
    registered = _plan(aws, "exp-a")
    _register(aws, registered)
    other = names.model_uri(aws, sha256_hex(b"another model"))

    assert registry.reject(aws, other, "why") is None
    assert registry.reject(aws, "s3://elsewhere/model.tar.gz", "why") is None
    assert registry.packages(aws)[registered.model_sha256].status == "PendingManualApproval"


def test_no_group_yet_means_nothing_registered(aws: Target) -> None:
    assert registry.packages(aws) == {}
    assert registry.reject(aws, names.model_uri(aws, sha256_hex(b"m")), "why") is None


def test_two_registrations_racing_create_one_package(aws: Target) -> None:
    """The idempotency token: a second create of the same model (its list came before the
    first create) answers with the first package, as SageMaker does."""
    plan = _plan(aws)
    first = _register(aws, plan)
    sm = boto3.client("sagemaker", region_name=aws.region)
    digest = plan.model_sha256
    again = sm.create_model_package(
        ModelPackageGroupName="fraud-detection", ModelApprovalStatus="PendingManualApproval",
        ModelPackageDescription=f"model sha256:{digest}",
        ClientToken=mr.client_token(aws.name, digest))
    assert again["ModelPackageArn"] == first.arn
    assert len(registry.packages(aws)) == 1


@pytest.mark.parametrize("value, expected", [
    ("pull/7#head", "pull/7_head"), ("", "-"), ("x" * 300, "x" * 256), ("a,b", "a_b")])
def test_metadata_values_keep_to_sagemakers_characters(value: str, expected: str) -> None:
    assert mr.metadata_value(value) == expected


PATH = "promotion-requests/fraud-detection.yaml"


def _at(share: int) -> str:
    return request_yaml("exp-challenger", eta=0.2, rollout=(
        f"rollout:\n  challenger:\n    traffic_percent: {share}\n"))


def _registered(t: Target, plan: Plan) -> mr.Registered:
    """What the plan run registers for ``plan`` (tests store plans without running plan)."""
    return registry.register(t, plan, image=lambda: "xgboost:3.0-5", pull_request=None,
                             plan_digest="d" * 64, metrics_uri="s3://b/m.json",
                             metrics_sha256="e" * 64)


@pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")
def test_apply_approves_what_it_deploys_and_a_revert_rejects_what_it_removes(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    champion_text = request_yaml("exp-champion", eta=0.3)
    champion = _registered(aws, store_plan(champion_text))
    start = git_repo.head()
    git_repo.commit({PATH: champion_text}, "Champion")
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", start]) == 0
    assert registry.packages(aws)[champion.digest].status == "Approved"

    challenger = _registered(aws, store_plan(_at(1)))
    before = git_repo.head()
    introduced = git_repo.commit({PATH: _at(1)}, "Challenger at 1 %")
    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", before]) == 0
    printed = capsys.readouterr().out
    assert (f"model registry: {mr.short(champion.digest)} Approved, "
            f"{mr.short(challenger.digest)} Approved") in printed
    approved = registry.describe(aws, challenger.arn)
    assert approved.status == "Approved"
    assert approved.approval_description is not None
    assert approved.approval_description.startswith(
        f"deployed to fraud-detection-production by {introduced[:12]}")

    before = git_repo.head()
    reverted = git_repo.revert(introduced)
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before", before]) == 0
    rejected = registry.describe(aws, challenger.arn)
    assert rejected.status == "Rejected"
    assert rejected.approval_description == (
        f"removed from production by {reverted[:12]}, a revert of {introduced[:12]} "
        "Challenger at 1 %")
    assert registry.packages(aws)[champion.digest].status == "Approved"
    # The record of the revert's apply names the change.
    record = artifacts.get_apply_record(aws, reverted)
    assert record is not None and Change(
        "registry", mr.short(challenger.digest), "Approved", "Rejected") in record.changes

    # History shows each planned model's registry state now, with the reason.
    capsys.readouterr()
    assert cli.main(["history", "--repo", str(git_repo.path)]) == 0
    history = capsys.readouterr().out
    assert (f"registry now: model {challenger.digest[:12]} Rejected (removed from production "
            f"by {reverted[:12]}, a revert of {introduced[:12]} Challenger at 1 %)") in history
    assert (f"registry now: model {champion.digest[:12]} Approved (deployed to "
            "fraud-detection-production by ") in history
    assert f"registry {mr.short(challenger.digest)}: Approved → Rejected" in history


def test_a_model_rejected_while_it_serves_is_not_approved_again_by_a_later_apply() -> None:
    live = {"a" * 64: mr.Registered("a" * 64, "arn:a", 1, "Rejected"),
            "b" * 64: mr.Registered("b" * 64, "arn:b", 2, "Approved"),
            "c" * 64: mr.Registered("c" * 64, "arn:c", 3, "PendingManualApproval"),
            "d" * 64: mr.Registered("d" * 64, "arn:d", 4, "Approved")}
    want = mr.wanted(serving={"a" * 64, "b" * 64}, keep={"d" * 64},
                     live_serving={"a" * 64, "b" * 64}, live=live, approve_reason="deployed",
                     reject_reason="removed")
    assert mr.changes(want, live) == []  # braked a stays rejected; c was never deployed
    want = mr.wanted(serving={"a" * 64, "c" * 64}, keep=set(), live_serving={"b" * 64},
                     live=live, approve_reason="deployed", reject_reason="removed")
    assert [(c.key, c.before, c.after) for c in mr.changes(want, live)] == [
        (mr.short("a" * 64), "Rejected", "Approved"),  # deployed anew by a pull request
        (mr.short("b" * 64), "Approved", "Rejected"),
        (mr.short("c" * 64), "PendingManualApproval", "Approved"),
        (mr.short("d" * 64), "Approved", "Rejected")]


class Killed(BaseException):
    """The process died here."""


@pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")
@pytest.mark.parametrize("kill_after", [1, 2])
def test_an_apply_killed_after_a_status_update_is_resumed_with_every_change(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        monkeypatch: pytest.MonkeyPatch, kill_after: int) -> None:
    """A new challenger replaces the one serving: one apply approves it and rejects the
    other. Killed after either UpdateModelPackage (its answer lost), the next run finishes
    and both changes are in its outcome and the record."""
    champion_text = request_yaml("exp-champion", eta=0.3)
    _registered(aws, store_plan(champion_text))
    start = git_repo.head()
    git_repo.commit({PATH: champion_text}, "Champion")
    apply(git_repo.path, start, "HEAD", None)
    old = _registered(aws, store_plan(_at(1)))
    before = git_repo.head()
    git_repo.commit({PATH: _at(1)}, "Challenger at 1 %")
    apply(git_repo.path, before, "HEAD", None)
    replacing = request_yaml("exp-other", eta=0.25, rollout=(
        "rollout:\n  challenger:\n    traffic_percent: 1\n"))
    new = _registered(aws, store_plan(replacing))
    before = git_repo.head()
    commit = git_repo.commit({PATH: replacing}, "Another challenger at 1 %")

    updates: list[str] = []
    real = clients._create

    def create(service: str, region: str) -> Any:
        created = real(service, region)

        def after(event_name: str, **_: Any) -> None:
            if not event_name.endswith(".UpdateModelPackage"):
                return
            updates.append(event_name)
            if len(updates) == kill_after:
                raise Killed(f"killed after UpdateModelPackage {kill_after}")

        created.meta.events.register("after-call", after)
        return created

    monkeypatch.setattr(clients, "_create", create)
    clients.forget()
    with pytest.raises(Killed):
        apply(git_repo.path, before, "HEAD", None)
    monkeypatch.setattr(clients, "_create", real)
    clients.forget()
    lock.break_lock(aws)  # the dead run's lock

    [resumed] = apply(git_repo.path, before, "HEAD", None)
    expected = {Change("registry", mr.short(new.digest), "PendingManualApproval", "Approved"),
                Change("registry", mr.short(old.digest), "Approved", "Rejected")}
    assert {c for c in resumed.changes if c.target == "registry"} == expected
    record = artifacts.get_apply_record(aws, commit)
    assert record is not None and record.finished
    assert {c for c in record.changes if c.target == "registry"} == expected
    statuses = {d: p.status for d, p in registry.packages(aws).items()}
    assert statuses[new.digest] == "Approved" and statuses[old.digest] == "Rejected"


def test_the_serving_image_is_looked_up_when_no_endpoint_model_has_it(
        aws: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTION_BOT_XGBOOST_IMAGE", "example/xgboost:3.0-5")
    settings.cache_clear()
    t = target(aws.name)
    elsewhere = names.model_uri(t, sha256_hex(b"not on the endpoint"))
    assert registry.serving_image(t, [elsewhere]) == (
        "example/xgboost:3.0-5")
