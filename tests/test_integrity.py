"""What apply deploys is what was reviewed: signed plans and models stored by digest, against
moto (issue #9: a swapped model, a forged or unsigned plan, each refused, nothing changed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import GitRepo, request_yaml

from bot import cli
from bot.adapters.aws import artifacts, signing
from bot.core import integrity, plan_json
from bot.core.domain import GateResult, Plan
from bot.errors import NotPlanned
from bot.flows.apply import apply
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"
FIRST = request_yaml("exp-xgboost-1")
SECOND = request_yaml("exp-xgboost-2", eta=0.2)


pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


def objects(t: Target) -> dict[str, Any]:
    """Every object apply may write, with its ETag: equal before and after a refusal."""
    s3 = boto3.client("s3", region_name=t.region)
    return {b: sorted((o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=b).get(
        "Contents", [])) for b in (t.config_bucket, t.artifacts_bucket)}


def overwrite(uri: str, body: bytes) -> None:
    """What the plan role's S3 access allowed: a plain PutObject over an existing key."""
    bucket, key = artifacts.split_uri(uri)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def refuse(repo: GitRepo, before: str, aws: Target, capsys: pytest.CaptureFixture[str],
           match: str) -> str:
    """Apply of ``before..HEAD`` is refused with one line and changes nothing."""
    unchanged = objects(aws), boto3.client("ssm").describe_parameters()["Parameters"]
    with pytest.raises(NotPlanned, match=match) as caught:
        apply(repo.path, before, "HEAD", None)
    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(repo.path), "--before", before]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith("nothing was applied"), err
    assert (objects(aws), boto3.client("ssm").describe_parameters()["Parameters"]) == unchanged
    return caught.value.message


def test_moto_refuses_a_conditional_write_over_an_existing_key(aws: Target) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=aws.artifacts_bucket, Key="k", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=aws.artifacts_bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=aws.artifacts_bucket, Key="k")["Body"].read() == b"one"


def test_models_are_stored_once_under_their_digest(aws: Target) -> None:
    uri = artifacts.store_model(aws, b"model bytes")
    digest = integrity.sha256_hex(b"model bytes")
    assert uri == (f"s3://{aws.artifacts_bucket}/promotion-bot/models/sha256/{digest}/"
                   "model.tar.gz")
    assert artifacts.store_model(aws, b"model bytes") == uri  # the same bytes again: fine
    assert artifacts.verify_model(uri) == digest

    overwrite(uri, b"someone else's bytes")  # only an admin could, with IAM's condition
    found = integrity.sha256_hex(b"someone else's bytes")
    with pytest.raises(artifacts.TamperedModel, match=f"sha256 {found}, but the reviewed model "
                                                      f"has sha256 {digest}"):
        artifacts.store_model(aws, b"model bytes")  # refused, and never overwritten
    assert artifacts.read_object(uri) == b"someone else's bytes"


def test_a_swapped_model_is_refused_at_apply_naming_both_digests(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = store_plan(FIRST)
    before = git_repo.head()
    git_repo.commit({PATH: FIRST}, "Promote (approved)")
    overwrite(plan.artifact, b"mallory's model")  # from an unrelated branch's plan job

    message = refuse(git_repo, before, aws, capsys, "replaced after review")
    assert plan.model_sha256 is not None
    assert plan.model_sha256 in message
    assert integrity.sha256_hex(b"mallory's model") in message


def test_a_swapped_champion_is_refused_before_anything_changes(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    champion = store_plan(FIRST)
    start = git_repo.head()
    git_repo.commit({PATH: FIRST}, "Promote exp-xgboost-1")
    apply(git_repo.path, start, "HEAD", None)
    store_plan(SECOND)
    before = git_repo.head()
    git_repo.commit({PATH: SECOND}, "Promote exp-xgboost-2")
    overwrite(champion.artifact, b"swapped without review")  # the live model, no merge

    message = refuse(git_repo, before, aws, capsys, "production's exp-xgboost-1 model")
    assert str(champion.model_sha256) in message


def forge(t: Target, plan: Plan, **changes: Any) -> None:
    """Rewrite the stored plan.json (plan.sig stays)."""
    from dataclasses import replace

    overwrite(f"{artifacts.plan_prefix(t, plan.content_sha256)}/plan.json",
              plan_json.to_bytes(replace(plan, **changes)))


def test_a_forged_passing_plan_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    failed = store_plan(FIRST, passed=False, accuracy=0.5)
    forge(aws, failed, gates=(GateResult("accuracy >= 0.90", 0.9, 0.95, True),))
    before = git_repo.head()
    git_repo.commit({PATH: FIRST}, "Promote")

    message = refuse(git_repo, before, aws, capsys, "is not the plan that was signed")
    assert "plan_sha256: signed" in message and "re-run plan on its pull request" in message


def test_an_unsigned_plan_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = store_plan(FIRST)
    bucket, key = artifacts.split_uri(
        f"{artifacts.plan_prefix(aws, plan.content_sha256)}/plan.sig")
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)
    before = git_repo.head()
    git_repo.commit({PATH: FIRST}, "Promote")

    refuse(git_repo, before, aws, capsys, r"is not signed \(no plan.sig beside it\)")


def test_a_plan_signed_with_another_key_is_refused(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    plan = store_plan(FIRST)
    kms = boto3.client("kms")
    theirs = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    forged = replace(plan, artifact=artifacts.store_model(aws, b"mallory's model"))
    body = plan_json.to_bytes(forged)
    statement = integrity.plan_statement(
        target=aws.name, content_sha256=plan.content_sha256,
        plan_sha256=integrity.sha256_hex(body), model_sha256=str(forged.model_sha256),
        model_uri=forged.artifact, passed=True, gates=[(g.name, g.passed) for g in plan.gates])
    envelope = signing.sign(replace(aws, signing_key=theirs["KeyId"]), statement)
    prefix = artifacts.plan_prefix(aws, plan.content_sha256)
    overwrite(f"{prefix}/plan.json", body)
    overwrite(f"{prefix}/plan.sig", envelope.to_bytes())
    before = git_repo.head()
    git_repo.commit({PATH: FIRST}, "Promote")

    message = refuse(git_repo, before, aws, capsys, "the signature does not verify with")
    assert theirs["Arn"] in message


@pytest.mark.parametrize("body", [b"", b"{}", b"not json", json.dumps(
    {"format": 1, "statement": {}, "key_id": "k", "algorithm": "ECDSA_SHA_256",
     "signature": "AAAA"}).encode()], ids=["empty", "empty-object", "garbage", "bad-signature"])
def test_a_broken_signature_is_refused(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str], body: bytes) -> None:
    plan = store_plan(FIRST)
    overwrite(f"{artifacts.plan_prefix(aws, plan.content_sha256)}/plan.sig", body)
    before = git_repo.head()
    git_repo.commit({PATH: FIRST}, "Promote")

    refuse(git_repo, before, aws, capsys, "is not signed by the plan job")


def test_a_signed_plan_copied_to_other_content_is_refused(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from bot.core.request import Request

    passing = store_plan(FIRST)
    other = Request.model_validate(yaml.safe_load(SECOND)).content_sha256()
    s3 = boto3.client("s3")
    for name in ("plan.json", "plan.sig"):
        bucket, key = artifacts.split_uri(
            f"{artifacts.plan_prefix(aws, passing.content_sha256)}/{name}")
        copy = key.replace(passing.content_sha256, other)
        s3.copy_object(Bucket=bucket, Key=copy, CopySource={"Bucket": bucket, "Key": key})
    before = git_repo.head()
    git_repo.commit({PATH: SECOND}, "Promote the unplanned exp-xgboost-2")

    refuse(git_repo, before, aws, capsys, "is not the plan that was signed "
                                          r"\(content_sha256: signed")


def test_a_signed_plan_round_trips(aws: Target, store_plan: Callable[..., Plan]) -> None:
    plan = store_plan(FIRST)
    assert artifacts.get_plan(aws, plan.content_sha256) == plan
    envelope = integrity.Envelope.from_bytes(artifacts.read_object(
        f"{artifacts.plan_prefix(aws, plan.content_sha256)}/plan.sig"))
    assert envelope.algorithm == "ECDSA_SHA_256"
    assert envelope.key_id.startswith("arn:aws:kms:us-east-1:")
    assert envelope.statement["passed"] is True
    assert envelope.statement["model_sha256"] == plan.model_sha256


def test_a_missing_signing_key_is_a_clear_error(
        aws: Target, store_plan: Callable[..., Plan]) -> None:
    from dataclasses import replace

    from bot.errors import BotError

    with pytest.raises(BotError, match=r"KMS key alias/nope not found in us-east-1: create the "
                                       "plan-signing key"):
        signing.sign(replace(aws, signing_key="alias/nope"), {"kind": "x"})
