"""A re-plan trusts nothing in S3 it cannot verify (issue #9): a forged or unsigned stored
plan, or a forged model index, is evaluated afresh on the embedded default; a swapped
champion model is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import boto3
import pytest
from conftest import run_plan

from bot import cli
from bot.adapters.aws import artifacts, config_store, plan_store
from bot.adapters.aws import s3 as s3_io
from bot.core import plan_json
from bot.core.domain import GateResult
from bot.local.aws_server import LocalAWS
from bot.settings import target

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = (ROOT / "promotion-requests" / "fraud-detection.yaml").read_text()
T = target("fraud-detection")


#: A small production: quick to set up; its test set holds a few frauds.
PRODUCTION_ROWS = 3000

pytestmark = pytest.mark.usefixtures("no_github_context")


def request_file(tmp_path: Path, rounds: int) -> Path:
    """A small request (a few rounds: quick to train) in a fresh git repository."""
    text = SHIPPED.replace("num_round: 150", f"num_round: {rounds}").replace(
        "max_depth: 7", "max_depth: 3")
    path = tmp_path / "repo" / "promotion-requests" / "fraud-detection.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    subprocess.run(["git", "init", "-q", str(path.parents[1])], check=True)
    return path


def put(uri: str, body: bytes) -> None:
    bucket, key = s3_io.split_uri(uri)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def stored(sha: str) -> plan_store.StoredPlan:
    found = plan_store.plan_of_content(T, sha)
    assert found is not None
    return found


def unsign(sha: str) -> None:
    """Replace the signed entry that lists the last plan of content ``sha`` with its plan.json
    (what someone without the key could write there)."""
    found = stored(sha)
    put(f"s3://{T.artifacts_bucket}/{T.artifacts_prefix}/plans/contents/{sha}/"
        f"{found.digest}.json", s3_io.read_uri(found.uri))


def test_a_forged_stored_plan_is_evaluated_afresh(
        production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    path = request_file(tmp_path, rounds=7)
    _, honest = run_plan(path, tmp_path / "first", capsys)
    first = plan_json.from_bytes(honest, "plan.json")
    found = stored(first.content_sha256)
    forged = replace(first, gates=(GateResult("accuracy >= 0.10", 0.1, 0.99, True),),
                     experiment_id="forged")
    put(found.uri, plan_json.to_bytes(forged))

    err, again = run_plan(path, tmp_path / "second", capsys)

    assert "not reusing the stored plan: " in err and "is not the plan that was signed" in err
    assert "reusing the stored evaluation" not in err and "evaluating on" in err
    replanned = plan_json.from_bytes(again, "plan.json")
    assert replanned.gates == first.gates and replanned.experiment_id == first.experiment_id
    assert stored(first.content_sha256).plan == replanned  # signed again, stored beside it
    assert stored(first.content_sha256).digest != found.digest

    err, _ = run_plan(path, tmp_path / "third", capsys)  # and now reused, as before
    assert "reusing the stored evaluation" in err


def test_an_unsigned_stored_plan_is_evaluated_afresh(
        production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = request_file(tmp_path, rounds=8)
    _, honest = run_plan(path, tmp_path / "first", capsys)
    sha = plan_json.from_bytes(honest, "plan.json").content_sha256
    unsign(sha)

    err, _ = run_plan(path, tmp_path / "second", capsys)

    assert "not reusing the stored plan: " in err and "is not a signature" in err
    assert "evaluating on" in err
    assert plan_store.plan_of_content(T, sha) is not None


def test_a_forged_model_index_is_not_reused(
        production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = request_file(tmp_path, rounds=9)
    _, honest = run_plan(path, tmp_path / "first", capsys)
    first = plan_json.from_bytes(honest, "plan.json")
    theirs = artifacts.store_model(T, s3_io.read_uri(first.artifact) + b"\0backdoor")
    index = (f"s3://{T.artifacts_bucket}/{T.artifacts_prefix}/models/keys/"
             f"{first.model_key}.json")
    put(index, s3_io.read_uri(index).replace(
        str(first.model_sha256).encode(), theirs.split("/")[-2].encode()))
    unsign(first.content_sha256)  # so the model is looked up

    err, again = run_plan(path, tmp_path / "second", capsys)

    assert "training xgboost" in err and "reusing the model" not in err
    assert plan_json.from_bytes(again, "plan.json").artifact != theirs


def test_a_swapped_champion_model_is_refused_by_plan(
        production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = config_store.read(T)
    assert live is not None and live.champion is not None
    uri = live.champion.model_artifact
    original = s3_io.read_uri(uri)
    put(uri, b"swapped")
    try:
        capsys.readouterr()
        code = cli.main(["plan", str(request_file(tmp_path, rounds=10)),
                         "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
    finally:
        put(uri, original)
    assert code == 2
    assert "the model's bytes have sha256" in err and "replaced after review" in err
    assert err.strip().splitlines()[-1].startswith("promotion-bot plan: ")
    assert "Traceback" not in err
