"""What apply deploys is what was reviewed: signed plans and models stored by digest, against
moto (issue #9: a swapped model, a forged or unsigned plan, each refused, nothing changed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import GitRepo, a_plan_of, request_yaml

from bot import __version__, cli
from bot.adapters.aws import artifacts, plan_store, signing
from bot.adapters.aws import s3 as s3_io
from bot.core import integrity, names, plan_json
from bot.core.domain import GateResult, Plan
from bot.errors import BotError, NotPlanned
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
    bucket, key = s3_io.split_uri(uri)
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
    assert s3_io.read_uri(uri) == b"someone else's bytes"


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


def stored_at(t: Target, head: str) -> plan_store.StoredPlan:
    """The plan the plan job stored for ``head``."""
    found = plan_store.plan_of_head(t, head)
    assert found is not None
    return found


def forge(t: Target, head: str, **changes: Any) -> None:
    """Rewrite the plan.json of ``head``'s stored plan (plan.sig and its entries stay)."""
    from dataclasses import replace

    found = stored_at(t, head)
    overwrite(found.uri, plan_json.to_bytes(replace(found.plan, **changes)))


def test_a_forged_passing_plan_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(FIRST, passed=False, accuracy=0.5)
    before = git_repo.head()
    head = git_repo.commit({PATH: FIRST}, "Promote")
    forge(aws, head, gates=(GateResult("accuracy >= 0.90", 0.9, 0.95, True),))

    message = refuse(git_repo, before, aws, capsys, "is not the plan that was signed")
    assert "plan_sha256: signed" in message and "re-run plan on its pull request" in message


def test_a_plan_the_plan_job_did_not_sign_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    before = git_repo.head()
    head = git_repo.commit({PATH: FIRST}, "Promote (never planned)")
    plan = a_plan_of(aws, FIRST)
    body = plan_json.to_bytes(plan)
    digest = integrity.sha256_hex(body)
    overwrite(f"{names.plan_prefix(aws, digest)}/plan.json", body)
    overwrite(f"{names.head_index(aws, head)}{digest}.json", body)  # no signature

    message = refuse(git_repo, before, aws, capsys, "can be trusted")
    assert f"plans/heads/{head}/{digest}.json is not a signature" in message


def test_a_plan_signed_with_another_key_is_refused(
        aws: Target, git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    before = git_repo.head()
    head = git_repo.commit({PATH: FIRST}, "Promote (never planned)")
    kms = boto3.client("kms")
    theirs = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    plan = a_plan_of(aws, FIRST)
    forged = replace(plan, artifact=artifacts.store_model(aws, b"mallory's model"))
    body = plan_json.to_bytes(forged)
    digest = integrity.sha256_hex(body)
    statement = integrity.plan_statement(
        target=aws.name, content_sha256=plan.content_sha256, head=head, plan_sha256=digest,
        plan_format=plan_json.FORMAT, model_sha256=str(forged.model_sha256),
        model_uri=forged.artifact, passed=True, gates=[(g.name, g.passed) for g in plan.gates],
        data_versions={}, champion="seed-baseline", champion_model_sha256=None,
        production_config_version=None, bot_version="0", signed_at="2099-01-01T00:00:00+00:00")
    envelope = signing.sign(replace(aws, signing_key=theirs["KeyId"]), statement)
    overwrite(f"{names.plan_prefix(aws, digest)}/plan.json", body)
    overwrite(f"{names.head_index(aws, head)}{digest}.json", envelope.to_bytes())

    message = refuse(git_repo, before, aws, capsys, "the signature does not verify with")
    assert theirs["Arn"] in message


@pytest.mark.parametrize("body", [b"", b"{}", b"not json", json.dumps(
    {"format": 1, "statement": {}, "key_id": "k", "algorithm": "ECDSA_SHA_256",
     "signature": "AAAA"}).encode()], ids=["empty", "empty-object", "garbage", "bad-signature"])
def test_a_broken_signature_is_refused(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str], body: bytes) -> None:
    store_plan(FIRST)
    before = git_repo.head()
    head = git_repo.commit({PATH: FIRST}, "Promote")
    found = stored_at(aws, head)
    overwrite(f"{names.head_index(aws, head)}{found.digest}.json", body)

    refuse(git_repo, before, aws, capsys, "no plan listed under .* can be trusted")


def test_a_signed_plan_of_another_head_is_refused(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        capsys: pytest.CaptureFixture[str]) -> None:
    """The plan of one pull request, listed under another's head (same content, or not):
    its signature names the head it was made at."""
    store_plan(FIRST)
    first = git_repo.commit({PATH: FIRST}, "Promote exp-xgboost-1 (planned)")
    theirs = stored_at(aws, first)
    before = first
    head = git_repo.commit({PATH: SECOND}, "Promote the unplanned exp-xgboost-2")
    s3 = boto3.client("s3")
    bucket, key = s3_io.split_uri(f"{names.head_index(aws, first)}{theirs.digest}.json")
    s3.copy_object(Bucket=bucket, Key=key.replace(first, head),
                   CopySource={"Bucket": bucket, "Key": key})

    message = refuse(git_repo, before, aws, capsys, "is signed for another plan")
    assert f"head: signed {first[:12]}, found {head[:12]}" in message


def test_plans_are_written_once_under_their_digest(
        aws: Target, store_plan: Callable[..., Plan]) -> None:
    from dataclasses import replace

    store_plan(FIRST)
    found = stored_at(aws, "0" * 40)
    assert found.uri == (f"s3://{aws.artifacts_bucket}/promotion-bot/plans/sha256/"
                         f"{found.digest}/plan.json")
    assert integrity.sha256_hex(s3_io.read_uri(found.uri)) == found.digest
    # Storing it again changes nothing; other bytes under its name are refused.
    assert plan_store.put_plan(aws, found.plan, {}).digest == found.digest
    overwrite(found.uri, b"other bytes")
    with pytest.raises(BotError, match="exists with other bytes"):
        plan_store.put_plan(aws, found.plan, {})
    # A later plan of the same head is stored beside it, never over it.
    assert found.plan.identity is not None
    later = replace(found.plan, identity=replace(found.plan.identity,
                                                 signed_at="2099-01-01T00:00:00+00:00"))
    assert plan_store.put_plan(aws, later, {}).digest != found.digest
    assert s3_io.read_uri(found.uri) == b"other bytes"


def test_a_signed_plan_round_trips(aws: Target, store_plan: Callable[..., Plan]) -> None:
    plan = store_plan(FIRST)
    found = stored_at(aws, "0" * 40)
    assert found.plan == replace_identity(plan, found.plan)
    assert plan_store.get_plan(aws, found.digest) == found.plan
    envelope = integrity.Envelope.from_bytes(s3_io.read_uri(
        f"{names.plan_prefix(aws, found.digest)}/plan.sig"))
    assert envelope.algorithm == "ECDSA_SHA_256"
    assert envelope.key_id.startswith("arn:aws:kms:us-east-1:")
    statement = envelope.statement
    assert statement["passed"] is True and statement["format"] == 2
    assert statement["model_sha256"] == plan.model_sha256
    assert found.plan.identity is not None
    assert (statement["head"], statement["signed_at"], statement["plan_format"]) == (
        "0" * 40, found.plan.identity.signed_at, plan_json.FORMAT)
    assert statement["data"] == {"train": "v1", "test": "v1"}
    assert statement["champion"] == {"identity": "seed-baseline", "model_sha256": None,
                                     "config_version": None}
    assert statement["bot_version"] == __version__
    index = s3_io.read_uri(f"{names.head_index(aws, '0' * 40)}{found.digest}.json")
    assert integrity.Envelope.from_bytes(index).statement == statement


def replace_identity(plan: Plan, stored: Plan) -> Plan:
    from dataclasses import replace

    return replace(plan, identity=stored.identity)


def test_a_missing_signing_key_is_a_clear_error(
        aws: Target, store_plan: Callable[..., Plan]) -> None:
    from dataclasses import replace

    from bot.errors import BotError

    with pytest.raises(BotError, match=r"KMS key alias/nope not found in us-east-1: create the "
                                       "plan-signing key"):
        signing.sign(replace(aws, signing_key="alias/nope"), {"kind": "x"})
